// Package store is the registry's SQL in Quay's schema. One implementation
// (DB, over database/sql) speaks to SQLite (embedded default, modernc.org/sqlite)
// and to PostgreSQL (pgx/v5 stdlib); the differences live in a small dialect.
// The same store test suite runs on both.
package store

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Errors callers branch on. Use errors.Is.
var (
	ErrNotFound = errors.New("not found")
	ErrExists   = errors.New("already exists")
	// ErrNotEmpty: the registry already has users (user/initialize).
	ErrNotEmpty = errors.New("the registry already has users")
)

// BlobUnknownError is returned by PutManifest when a referenced blob is not
// linked to the repository.
type BlobUnknownError struct{ Digest string }

func (e BlobUnknownError) Error() string {
	return fmt.Sprintf("blob unknown to repository: %s", e.Digest)
}

// ManifestUnknownError is returned by PutManifest when a child manifest of an
// index does not exist in the repository.
type ManifestUnknownError struct{ Digest string }

func (e ManifestUnknownError) Error() string {
	return fmt.Sprintf("manifest unknown to repository: %s", e.Digest)
}

// Role is a repository permission, Quay's `role` names.
type Role string

const (
	RoleNone  Role = ""
	RoleRead  Role = "read"
	RoleWrite Role = "write"
	RoleAdmin Role = "admin"
)

// Rank orders roles so that the best of several grants can be chosen.
func (r Role) Rank() int {
	switch r {
	case RoleRead:
		return 1
	case RoleWrite:
		return 2
	case RoleAdmin:
		return 3
	}
	return 0
}

// Repository states, Quay's RepositoryState.
const (
	RepoStateNormal            = 0
	RepoStateReadOnly          = 1
	RepoStateMirror            = 2
	RepoStateMarkedForDeletion = 3
)

// User is a row of Quay's `user` table: people, organisations and robots.
type User struct {
	ID                    int64
	UUID                  string
	Username              string
	Email                 string
	PasswordHash          string // "" when NULL (orgs, robots)
	Verified              bool
	Organization          bool
	Robot                 bool
	Enabled               bool
	InvalidLoginAttempts  int
	RemovedTagExpirationS int64
	CreationDate          time.Time
}

// NewUser are the fields a caller chooses when creating a user row.
type NewUser struct {
	Username     string
	Email        string // "" means: a random placeholder, as Quay does for orgs/robots
	PasswordHash string // "" stores NULL
	Verified     bool
	Organization bool
	Robot        bool
	// Superuser records the user in quayctl_superuser in the same transaction.
	Superuser bool
	// RemovedTagExpirationS is the namespace's time-machine window; 0 means
	// the default of 1209600 (two weeks).
	RemovedTagExpirationS int64
}

// Repository is a row of `repository` joined with its namespace name.
type Repository struct {
	ID          int64
	NamespaceID int64
	Namespace   string
	Name        string
	Public      bool
	Description string
	State       int
}

// FullName is "namespace/name".
func (r *Repository) FullName() string { return r.Namespace + "/" + r.Name }

// Blob is a row of `imagestorage`.
type Blob struct {
	ID        int64
	UUID      string
	Digest    string // content_checksum, "sha256:<hex>"
	Size      int64  // image_size
	Uploading bool
}

// Upload is a row of `blobupload`: a blob upload session.
type Upload struct {
	ID              int64
	RepositoryID    int64
	UUID            string
	ByteCount       int64
	ShaState        []byte // our own portable hash state (not Quay's pickle)
	ChunkCount      int
	Location        string // imagestoragelocation name
	StorageMetadata string // JSON, driver-specific (multipart ids ...)
	Created         time.Time
}

// Manifest is a row of `manifest` with its media type name resolved.
type Manifest struct {
	ID              int64
	RepositoryID    int64
	Digest          string
	MediaType       string
	Bytes           []byte // manifest_bytes
	ConfigMediaType string
	LayersSize      int64 // layers_compressed_size
	Subject         string
	ArtifactType    string
}

// Tag is a row of `tag` with its manifest digest resolved.
type Tag struct {
	ID              int64
	RepositoryID    int64
	Name            string
	ManifestID      int64
	ManifestDigest  string
	LifetimeStartMs int64
	LifetimeEndMs   *int64
	Hidden          bool
	Immutable       bool
	Reversion       bool
}

// PutManifestParams is everything PutManifest writes in one transaction.
type PutManifestParams struct {
	RepositoryID int64
	Manifest     Manifest // ID and RepositoryID are ignored
	BlobDigests  []string // layers and config: each must be linked to the repository
	ChildDigests []string // index children: each must exist in the repository
	// Tag, if not empty, is created or moved to the manifest (ending the
	// previous row's lifetime). If empty, a hidden temporary tag
	// "$temp-<uuid>" keeps the manifest alive for TempTagTTL, as Quay does.
	Tag        string
	TempTagTTL time.Duration
}

// ServiceKey is a row of `servicekey` (auto-approved).
type ServiceKey struct {
	Kid            string
	Service        string
	Name           string
	JWK            []byte // JSON
	CreatedDate    time.Time
	ExpirationDate *time.Time
}

// LogEntry is an audit row for `logentry3`; Kind is a `logentrykind` name.
type LogEntry struct {
	Kind         string
	AccountID    int64 // namespace user id
	PerformerID  *int64
	RepositoryID *int64
	IP           string
	Metadata     map[string]any
	Time         time.Time // zero means now
}

// NewOAuthToken is a token to store: the application is created in the
// user's namespace when none of that name exists.
type NewOAuthToken struct {
	UserID          int64
	ApplicationName string // e.g. "automation"
	Scope           string // space-separated Quay scopes
	TokenName       string // first 20 characters of the token
	TokenCodeHash   string // bcrypt of the remaining 20
	ExpiresAt       time.Time
}

// OAuthToken is a stored access token.
type OAuthToken struct {
	UserID        int64
	Scope         string
	TokenCodeHash string
	ExpiresAt     time.Time
}

// LogQuery filters audit rows; zero fields do not filter.
type LogQuery struct {
	AccountID    int64
	RepositoryID int64
	PerformerID  int64
	Kind         string
	Since, Until time.Time // Since inclusive, Until exclusive
	Limit        int       // <=0: 100
	// Before, when set, continues a listing: only rows after it in the
	// listing's order (newest first) are returned.
	Before *LogCursor
}

// LogCursor is the position of a row in an audit log listing.
type LogCursor struct {
	Time time.Time
	ID   int64
}

// LogRecord is an audit row as read back, with the kind name resolved.
type LogRecord struct {
	ID           int64
	Kind         string
	AccountID    int64
	PerformerID  *int64
	RepositoryID *int64
	IP           string
	Metadata     map[string]any
	Time         time.Time
}

// Store is what the registry needs from its database.
type Store interface {
	Close() error
	// Dialect is "sqlite" or "postgresql".
	Dialect() string
	// Migrate applies the embedded schema migrations (idempotent).
	Migrate(ctx context.Context) error
	// Ping selects one row from teamrole, as Quay's database health check.
	Ping(ctx context.Context) error

	// Users.
	CountUsers(ctx context.Context) (int64, error)
	CreateUser(ctx context.Context, u NewUser) (*User, error) // ErrExists on duplicate username
	// CreateInitialUser creates the first user as a superuser, only when
	// there are no users at all (ErrNotEmpty otherwise), in one transaction.
	CreateInitialUser(ctx context.Context, u NewUser) (*User, error)
	UserByName(ctx context.Context, username string) (*User, error)
	UserByEmail(ctx context.Context, email string) (*User, error) // non-organisation users only
	UserByID(ctx context.Context, id int64) (*User, error)
	SetPasswordHash(ctx context.Context, userID int64, hash string) error
	// RecordLoginAttempt resets invalid_login_attempts on success and
	// increments it (setting last_invalid_login) on failure.
	RecordLoginAttempt(ctx context.Context, userID int64, success bool) error

	// Superusers recorded in the database (quayctl_superuser), in addition
	// to SUPER_USERS from the config: the first user created through
	// user/initialize and users created with --superuser.
	AddSuperuser(ctx context.Context, userID int64) error
	Superusers(ctx context.Context) ([]string, error)

	// OAuth access tokens (Quay's oauthapplication/oauthaccesstoken), as
	// user/initialize creates them for automation.
	CreateOAuthToken(ctx context.Context, t NewOAuthToken) error
	// OAuthToken finds an unexpired token by its public half (token_name).
	OAuthToken(ctx context.Context, tokenName string) (*OAuthToken, error)

	// Service keys for JWT signing.
	PutServiceKey(ctx context.Context, k ServiceKey) error
	ServiceKey(ctx context.Context, kid string) (*ServiceKey, error) // approved and unexpired only

	// Repositories.
	Repository(ctx context.Context, namespace, name string) (*Repository, error)
	// CreateRepository creates a repository in the namespace (visibility from
	// public) and, when creatorID is not the namespace itself, gives the
	// creator an explicit admin permission row, as Quay does.
	CreateRepository(ctx context.Context, namespaceID int64, name string, public bool, creatorID int64) (*Repository, error)
	// RepositoryRole is the best role userID holds on the repository through
	// direct permissions, team permissions, or an admin team of the owning
	// organisation; RoleAdmin when userID owns the namespace.
	RepositoryRole(ctx context.Context, userID, repositoryID int64) (Role, error)
	// ListVisibleRepositories returns "namespace/name" sorted ascending,
	// strictly after `last`, at most n (n<=0: no limit), for repositories
	// userID may read (userID 0 = anonymous: public only; superuser sees all).
	ListVisibleRepositories(ctx context.Context, userID int64, superuser bool, last string, n int) ([]string, error)

	// Blobs.
	BlobByDigest(ctx context.Context, digest string) (*Blob, error)
	// RepositoryBlob finds a blob linked to the repository: referenced by one
	// of its manifests (manifestblob) or uploaded to it and not expired
	// (uploadedblob).
	RepositoryBlob(ctx context.Context, repositoryID int64, digest string) (*Blob, error)
	// LinkBlob records a stored blob: the imagestorage row (created once per
	// digest), its placement at location, and an uploadedblob row linking it
	// to the repository until now+ttl.
	LinkBlob(ctx context.Context, repositoryID int64, digest string, size int64, location string, ttl time.Duration) (*Blob, error)
	// UnlinkBlob removes the repository's uploadedblob rows for the blob.
	UnlinkBlob(ctx context.Context, repositoryID, blobID int64) error
	// BlobRepositories lists up to limit repositories the blob is linked to
	// (as RepositoryBlob defines it), for mounts without a source.
	BlobRepositories(ctx context.Context, blobID int64, limit int) ([]Repository, error)
	// BlobLocations lists the location names that hold the blob.
	BlobLocations(ctx context.Context, blobID int64) ([]string, error)

	// Uploads.
	CreateUpload(ctx context.Context, u *Upload) error // sets ID and Created
	Upload(ctx context.Context, repositoryID int64, uuid string) (*Upload, error)
	UpdateUpload(ctx context.Context, u *Upload) error // byte_count, sha_state, chunk_count, storage_metadata
	DeleteUpload(ctx context.Context, uuid string) error

	// Manifests and tags.
	ManifestByDigest(ctx context.Context, repositoryID int64, digest string) (*Manifest, error)
	// ManifestByTag resolves an alive, non-hidden tag.
	ManifestByTag(ctx context.Context, repositoryID int64, tag string) (*Manifest, *Tag, error)
	PutManifest(ctx context.Context, p PutManifestParams) (*Manifest, error)
	// DeleteManifest ends every alive tag pointing at the manifest and removes
	// the manifest with its manifestblob/manifestchild rows and its tag rows.
	DeleteManifest(ctx context.Context, repositoryID int64, digest string) error
	// Referrers lists manifests of the repository whose subject is digest,
	// filtered by artifactType when not empty, ordered by id.
	Referrers(ctx context.Context, repositoryID int64, subjectDigest, artifactType string) ([]Manifest, error)
	// ListTags returns names of alive, non-hidden tags sorted ascending,
	// strictly after `last`, at most n (n<=0: no limit).
	ListTags(ctx context.Context, repositoryID int64, last string, n int) ([]string, error)
	// DeleteTag ends an alive tag's lifetime (ErrNotFound if none).
	DeleteTag(ctx context.Context, repositoryID int64, name string) error

	// Audit log.
	Log(ctx context.Context, e LogEntry) error
	// Logs reads audit rows, newest first.
	Logs(ctx context.Context, q LogQuery) ([]LogRecord, error)

	// Organisations, teams, robots, repository permissions and visibility.
	NamespaceStore
	// App tokens, user administration, repository deletion, tag pages.
	AccessStore
	// Garbage collection and the tag time machine (gc.go, tags.go).
	GCStore
	// Repository mirroring (mirror.go).
	MirrorStore
	// Repository notifications, their delivery queue, in-app notifications (notifications.go).
	NotificationStore
	// Quota management (quota.go).
	QuotaStore
	// Abandoned upload sessions (uploadcleanup.go).
	UploadCleanupStore
	// Namespace auto-prune policies and tasks (autoprune.go).
	AutoPruneStore
	// Geo-replication queue and placements (replication.go).
	ReplicationStore
}

// Errors of organisations, teams, robots and permissions. Use errors.Is.
var (
	// ErrNotOrganization: teams exist only in organisations.
	ErrNotOrganization = errors.New("namespace is not an organization")
	// ErrOwnersTeam: the organisation's owners team cannot be deleted, as
	// Quay refuses to remove an organisation's last admin team.
	ErrOwnersTeam = errors.New("the owners team of an organization cannot be deleted")
)

// InvalidInputError reports input that breaks Quay's rules: a name that
// does not match Quay's pattern, an unknown role, a permission naming both
// a user and a team, a robot of another namespace. Use errors.As.
type InvalidInputError struct {
	Field  string // "robot name", "team role", "permission", ...
	Value  string
	Reason string
}

func (e InvalidInputError) Error() string {
	return fmt.Sprintf("invalid %s %q: %s", e.Field, e.Value, e.Reason)
}

// Team roles, Quay's `teamrole` names.
const (
	TeamRoleAdmin   = "admin"
	TeamRoleCreator = "creator"
	TeamRoleMember  = "member"
)

// OwnersTeam is the team Quay creates with every organisation.
const OwnersTeam = "owners"

// Team is a row of `team` with its teamrole name resolved.
type Team struct {
	ID             int64
	OrganizationID int64
	Name           string
	Role           string // TeamRoleAdmin, TeamRoleCreator or TeamRoleMember
	Description    string
}

// Robot is a robot account as listed: a `user` row with its
// robotaccountmetadata description.
type Robot struct {
	ID          int64
	Name        string // "<namespace>+<short>"
	Description string
	Created     time.Time
}

// Permission is a repositorypermission row as listed.
type Permission struct {
	Kind string // "user", "team" or "robot"
	ID   int64  // user or team id
	Name string // username, robot name or team name
	Role Role
}

// NamespaceStore is the organisation, team, robot and permission part of
// the store (Quay's access model). DB implements it.
type NamespaceStore interface {
	// CreateOrganization creates, in one transaction, the organisation row
	// (organization=true, no password, a random e-mail when email is ""),
	// its team "owners" (teamrole admin) and creatorID as its member.
	// ErrExists when the name is taken.
	CreateOrganization(ctx context.Context, name, email string, creatorID int64) (*User, error)

	// Teams; ErrNotOrganization when orgID is not an organisation.
	CreateTeam(ctx context.Context, orgID int64, name, role, description string) (*Team, error)
	TeamByName(ctx context.Context, orgID int64, name string) (*Team, error)
	ListTeams(ctx context.Context, orgID int64) ([]Team, error) // by name
	// AddTeamMember is idempotent; members are users or robots of the
	// organisation, never organisations.
	AddTeamMember(ctx context.Context, teamID, userID int64) error
	RemoveTeamMember(ctx context.Context, teamID, userID int64) error // ErrNotFound when not a member
	TeamMembers(ctx context.Context, teamID int64) ([]User, error)    // by username
	// DeleteTeam removes the team with its members and repository
	// permissions; ErrOwnersTeam for the owners team.
	DeleteTeam(ctx context.Context, teamID int64) error

	// NamespaceRole is what userID may do in the namespace: "admin" when it
	// is the namespace itself or in an admin team of the organisation,
	// otherwise the best teamrole of its teams there ("creator", "member"),
	// or "".
	NamespaceRole(ctx context.Context, userID, namespaceID int64) (string, error)

	// Robots. CreateRobot writes, in one transaction, the robot's user row
	// ("<ns>+<short>", robot=true, e-mail a uuid4, no password), its
	// robotaccounttoken (the already-encrypted token, fully_migrated),
	// federatedlogin (quayrobot, "robot:<id>") and robotaccountmetadata.
	// Short names match ^[a-z][a-z0-9_]{1,254}$ (InvalidInputError).
	CreateRobot(ctx context.Context, namespaceID int64, shortName, description, encryptedToken string) (*User, error)
	RobotToken(ctx context.Context, robotID int64) (string, error) // the encrypted token
	SetRobotToken(ctx context.Context, robotID int64, encryptedToken string) error
	ListRobots(ctx context.Context, namespaceID int64) ([]Robot, error) // by name
	// DeleteRobot removes the robot's token, metadata, federated login,
	// team memberships and permissions, then its user row, in one
	// transaction.
	DeleteRobot(ctx context.Context, robotID int64) error

	// Repository permissions: exactly one of userID and teamID is non-zero
	// (InvalidInputError otherwise). Robots and teams must belong to the
	// repository's namespace.
	SetRepositoryPermission(ctx context.Context, repoID, userID, teamID int64, role Role) error // upsert
	DeleteRepositoryPermission(ctx context.Context, repoID, userID, teamID int64) error         // ErrNotFound when none
	ListRepositoryPermissions(ctx context.Context, repoID int64) ([]Permission, error)          // teams first, then by name

	SetRepositoryVisibility(ctx context.Context, repoID int64, public bool) error
	SetRepositoryDescription(ctx context.Context, repoID int64, description string) error
}
