package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
)

// AppToken is a row of Quay's appspecificauthtoken: a user's application
// token. TokenSecret is the encrypted second half of the token.
type AppToken struct {
	ID           int64
	UserID       int64
	UUID         string
	Title        string
	TokenName    string // the first 60 characters of the token, in clear
	TokenSecret  string // the last 60, encrypted (encfield)
	Created      time.Time
	Expiration   *time.Time
	LastAccessed *time.Time
}

// TagInfo is a tag as the API lists it: the tag row with its manifest's
// media type and size.
type TagInfo struct {
	Tag
	MediaType string
	Size      int64 // manifest.layers_compressed_size
}

// TagListQuery selects a page of a repository's tags for the API.
type TagListQuery struct {
	RepositoryID int64
	Name         string // exact tag name; "" for all
	OnlyActive   bool   // alive rows only (otherwise history too)
	Limit        int    // rows per page
	Offset       int
}

// AccessStore is the part of the store behind Quay's account and
// repository administration API. DB implements it.
type AccessStore interface {
	// App-specific tokens (appspecificauthtoken).
	CreateAppToken(ctx context.Context, t AppToken) (*AppToken, error)
	AppTokenByName(ctx context.Context, tokenName string) (*AppToken, error)
	AppTokenByUUID(ctx context.Context, userID int64, uuid string) (*AppToken, error)
	ListAppTokens(ctx context.Context, userID int64) ([]AppToken, error) // newest first
	DeleteAppToken(ctx context.Context, userID int64, uuid string) error
	// TouchAppToken records that the token was used.
	TouchAppToken(ctx context.Context, id int64) error

	// UpdateTeam sets a team's role and description; the owners team keeps
	// its admin role (ErrOwnersTeam).
	UpdateTeam(ctx context.Context, teamID int64, role, description string) error

	// ListUsers lists people (not organisations, not robots) by username.
	ListUsers(ctx context.Context) ([]User, error)
	// SetUserEnabled enables or disables an account.
	SetUserEnabled(ctx context.Context, userID int64, enabled bool) error

	// DeleteRepository marks a repository for deletion as Quay's
	// mark_repository_for_deletion: its alive tags end now, it is renamed
	// to a uuid with state MARKED_FOR_DELETION, and a deletedrepository
	// row and a repositorygc queue item record it for garbage collection.
	// The name is free for a new repository at once.
	DeleteRepository(ctx context.Context, repoID int64) error
	// ListTagInfo pages through a repository's non-hidden tags, newest
	// first; more is true when another page follows.
	ListTagInfo(ctx context.Context, q TagListQuery) (tags []TagInfo, more bool, err error)
}

const appTokenColumns = `id, user_id, uuid, title, token_name, token_secret, created, expiration, last_accessed`

func scanAppToken(row interface{ Scan(...any) error }) (*AppToken, error) {
	var (
		t                  AppToken
		created, exp, last nullTime
	)
	if err := row.Scan(&t.ID, &t.UserID, &t.UUID, &t.Title, &t.TokenName, &t.TokenSecret, &created, &exp, &last); err != nil {
		return nil, err
	}
	t.Created, t.Expiration, t.LastAccessed = created.Time, exp.ptr(), last.ptr()
	return &t, nil
}

// CreateAppToken stores an application token; UUID is filled in when empty.
func (db *DB) CreateAppToken(ctx context.Context, t AppToken) (*AppToken, error) {
	if t.UUID == "" {
		t.UUID = uuid.NewString()
	}
	if t.Created.IsZero() {
		t.Created = db.now()
	}
	var exp any
	if t.Expiration != nil {
		exp = db.d.ts(*t.Expiration)
	}
	err := db.queryRow(ctx, db.w, `INSERT INTO appspecificauthtoken (user_id, uuid, title, created, expiration,
		last_accessed, token_name, token_secret) VALUES (?, ?, ?, ?, ?, NULL, ?, ?) RETURNING id`,
		t.UserID, t.UUID, t.Title, db.d.ts(t.Created), exp, t.TokenName, t.TokenSecret).Scan(&t.ID)
	if err != nil {
		if isUniqueViolation(err) {
			err = ErrExists
		}
		return nil, fmt.Errorf("create app token %q: %w", t.Title, err)
	}
	return &t, nil
}

// AppTokenByName finds a token by its public half, expired or not.
func (db *DB) AppTokenByName(ctx context.Context, tokenName string) (*AppToken, error) {
	t, err := scanAppToken(db.queryRow(ctx, db.r, `SELECT `+appTokenColumns+` FROM appspecificauthtoken WHERE token_name = ?`, tokenName))
	if err != nil {
		return nil, notFound(err, "app token")
	}
	return t, nil
}

// AppTokenByUUID finds one of a user's tokens.
func (db *DB) AppTokenByUUID(ctx context.Context, userID int64, id string) (*AppToken, error) {
	t, err := scanAppToken(db.queryRow(ctx, db.r, `SELECT `+appTokenColumns+` FROM appspecificauthtoken
		WHERE user_id = ? AND uuid = ?`, userID, id))
	if err != nil {
		return nil, notFound(err, "app token "+id)
	}
	return t, nil
}

// ListAppTokens lists a user's tokens, newest first.
func (db *DB) ListAppTokens(ctx context.Context, userID int64) ([]AppToken, error) {
	return queryAll(ctx, db, "list app tokens", `SELECT `+appTokenColumns+` FROM appspecificauthtoken
		WHERE user_id = ? ORDER BY created DESC, id DESC`, []any{userID},
		func(rows *sql.Rows) (AppToken, error) {
			t, err := scanAppToken(rows)
			if err != nil {
				return AppToken{}, err
			}
			return *t, nil
		})
}

// DeleteAppToken revokes one of a user's tokens.
func (db *DB) DeleteAppToken(ctx context.Context, userID int64, id string) error {
	what := "revoke app token " + id
	res, err := db.exec(ctx, db.w, `DELETE FROM appspecificauthtoken WHERE user_id = ? AND uuid = ?`, userID, id)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return checkAffected(res, what)
}

// TouchAppToken sets last_accessed to now.
func (db *DB) TouchAppToken(ctx context.Context, id int64) error {
	if _, err := db.exec(ctx, db.w, `UPDATE appspecificauthtoken SET last_accessed = ? WHERE id = ?`, db.d.ts(db.now()), id); err != nil {
		return fmt.Errorf("touch app token id %d: %w", id, err)
	}
	return nil
}

// ListUsers lists people by username.
func (db *DB) ListUsers(ctx context.Context) ([]User, error) {
	return queryAll(ctx, db, "list users", `SELECT `+userColumns+` FROM "user"
		WHERE organization = false AND robot = false ORDER BY username`+db.d.collateC(), nil,
		func(rows *sql.Rows) (User, error) {
			u, err := scanUser(rows)
			if err != nil {
				return User{}, err
			}
			return *u, nil
		})
}

// SetUserEnabled sets user.enabled.
func (db *DB) SetUserEnabled(ctx context.Context, userID int64, enabled bool) error {
	what := fmt.Sprintf("set enabled=%t on user id %d", enabled, userID)
	res, err := db.exec(ctx, db.w, `UPDATE "user" SET enabled = ? WHERE id = ?`, enabled, userID)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return checkAffected(res, what)
}

// repositoryGCQueue is Quay's queue name for repository garbage collection.
const repositoryGCQueue = "repositorygc"

// DeleteRepository marks a repository for deletion, as Quay does.
func (db *DB) DeleteRepository(ctx context.Context, repoID int64) error {
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		if err := db.advisoryLock(ctx, tx, retargetLockName(repoID)); err != nil {
			return err
		}
		var (
			ns, name string
			state    int
		)
		if err := db.queryRow(ctx, tx, `SELECT u.username, r.name, r.state FROM repository r
			JOIN "user" u ON u.id = r.namespace_user_id WHERE r.id = ?`, repoID).Scan(&ns, &name, &state); err != nil {
			return notFound(err, "repository")
		}
		if state == RepoStateMarkedForDeletion {
			return fmt.Errorf("already marked for deletion: %w", ErrNotFound)
		}
		nowMs := db.nowMs()
		alive, err := db.aliveTags(ctx, tx, repoID, nowMs)
		if err != nil {
			return err
		}
		for i := range alive {
			if err := db.endTag(ctx, tx, &alive[i], nowMs); err != nil {
				return err
			}
		}
		if _, err := db.exec(ctx, tx, `UPDATE repository SET name = ?, state = ? WHERE id = ?`,
			uuid.NewString(), RepoStateMarkedForDeletion, repoID); err != nil {
			return fmt.Errorf("rename: %w", err)
		}
		var markerID int64
		if err := db.queryRow(ctx, tx, `INSERT INTO deletedrepository (repository_id, marked, original_name, queue_id)
			VALUES (?, ?, ?, NULL) RETURNING id`, repoID, db.d.ts(db.now()), name).Scan(&markerID); err != nil {
			return fmt.Errorf("deletedrepository: %w", err)
		}
		body, _ := json.Marshal(map[string]any{"marker_id": markerID, "original_name": name})
		var queueID int64
		if err := db.queryRow(ctx, tx, `INSERT INTO queueitem (queue_name, body, available_after, available,
			processing_expires, retries_remaining, state_id) VALUES (?, ?, ?, true, NULL, 5, ?) RETURNING id`,
			fmt.Sprintf("%s/%s/%d/", repositoryGCQueue, ns, repoID), string(body), db.d.ts(db.now()), uuid.NewString()).Scan(&queueID); err != nil {
			return fmt.Errorf("queue repository gc: %w", err)
		}
		_, err = db.exec(ctx, tx, `UPDATE deletedrepository SET queue_id = ? WHERE id = ?`, fmt.Sprint(queueID), markerID)
		return err
	})
	if err != nil {
		return fmt.Errorf("delete repository id %d: %w", repoID, err)
	}
	return nil
}

// aliveTags lists every alive tag row of a repository, hidden ones too.
func (db *DB) aliveTags(ctx context.Context, tx *sql.Tx, repoID, nowMs int64) ([]Tag, error) {
	rows, err := db.query(ctx, tx, `SELECT `+tagColumns+` FROM tag t JOIN manifest m ON m.id = t.manifest_id
		WHERE t.repository_id = ? AND (t.lifetime_end_ms IS NULL OR t.lifetime_end_ms > ?)`, repoID, nowMs)
	if err != nil {
		return nil, fmt.Errorf("alive tags: %w", err)
	}
	defer rows.Close()
	var out []Tag
	for rows.Next() {
		t, err := scanTag(rows)
		if err != nil {
			return nil, fmt.Errorf("alive tags: %w", err)
		}
		out = append(out, *t)
	}
	return out, rows.Err()
}

// ListTagInfo pages through tags as Quay's list_repository_tag_history.
func (db *DB) ListTagInfo(ctx context.Context, q TagListQuery) ([]TagInfo, bool, error) {
	limit := q.Limit
	if limit <= 0 {
		limit = 50
	}
	where := []string{"t.repository_id = ?", "t.hidden = false"}
	args := []any{q.RepositoryID}
	if q.Name != "" {
		where, args = append(where, "t.name = ?"), append(args, q.Name)
	}
	if q.OnlyActive {
		where, args = append(where, "(t.lifetime_end_ms IS NULL OR t.lifetime_end_ms > ?)"), append(args, db.nowMs())
	}
	args = append(args, limit+1, q.Offset)
	tags, err := queryAll(ctx, db, "list tags", `SELECT `+tagColumns+`, mt.name, COALESCE(m.layers_compressed_size, 0)
		FROM tag t JOIN manifest m ON m.id = t.manifest_id JOIN mediatype mt ON mt.id = m.media_type_id
		WHERE `+strings.Join(where, " AND ")+`
		ORDER BY t.lifetime_start_ms DESC, t.name`+db.d.collateC()+` LIMIT ? OFFSET ?`, args,
		func(rows *sql.Rows) (TagInfo, error) {
			var (
				s  tagScan
				ti TagInfo
			)
			err := rows.Scan(append(s.dest(), &ti.MediaType, &ti.Size)...)
			ti.Tag = *s.result()
			return ti, err
		})
	if err != nil {
		return nil, false, err
	}
	more := len(tags) > limit
	if more {
		tags = tags[:limit]
	}
	return tags, more, nil
}

// UpdateTeam changes a team's role and description.
func (db *DB) UpdateTeam(ctx context.Context, teamID int64, role, description string) error {
	if !validTeamRole(role) {
		return InvalidInputError{Field: "team role", Value: role, Reason: "must be admin, creator or member"}
	}
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		var name string
		if err := db.queryRow(ctx, tx, `SELECT name FROM team WHERE id = ?`, teamID).Scan(&name); err != nil {
			return notFound(err, "team")
		}
		if name == OwnersTeam && role != TeamRoleAdmin {
			return fmt.Errorf("the owners team must keep the admin role: %w", ErrOwnersTeam)
		}
		_, err := db.exec(ctx, tx, `UPDATE team SET role_id = (SELECT id FROM teamrole WHERE name = ?), description = ?
			WHERE id = ?`, role, description, teamID)
		return err
	})
	if err != nil {
		return fmt.Errorf("update team id %d: %w", teamID, err)
	}
	return nil
}
