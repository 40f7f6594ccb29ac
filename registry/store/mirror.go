package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
)

// MirrorStatus is Quay's RepoMirrorStatus, the sync_status column.
type MirrorStatus int

// Quay's RepoMirrorStatus values (data/database.py); dbtools/diagnostics
// reads the same numbers.
const (
	MirrorCancel   MirrorStatus = -2
	MirrorFail     MirrorStatus = -1
	MirrorNeverRun MirrorStatus = 0
	MirrorSuccess  MirrorStatus = 1
	MirrorSyncing  MirrorStatus = 2
	MirrorSyncNow  MirrorStatus = 3
)

var mirrorStatusNames = map[MirrorStatus]string{
	MirrorCancel: "CANCEL", MirrorFail: "FAIL", MirrorNeverRun: "NEVER_RUN",
	MirrorSuccess: "SUCCESS", MirrorSyncing: "SYNCING", MirrorSyncNow: "SYNC_NOW",
}

func (s MirrorStatus) String() string {
	if n, ok := mirrorStatusNames[s]; ok {
		return n
	}
	return fmt.Sprintf("UNKNOWN(%d)", int(s))
}

// Mirror constants of Quay: RepoMirrorType PULL, RepoMirrorRuleType
// TAG_GLOB_CSV, MAX_SYNC_RETRIES and MAX_SYNC_DURATION (how long a claim
// holds before another worker may take the repository over).
const (
	MirrorTypePull      = 1
	MirrorRuleTagGlob   = 1
	MirrorMaxRetries    = 3
	MirrorClaimDuration = 12 * time.Hour
)

// MirrorConfig is a repomirrorconfig row with its root rule's globs, its
// repository and its robot's name.
type MirrorConfig struct {
	ID           int64
	RepositoryID int64
	Namespace    string // of the repository
	Repository   string
	RepoState    int
	NamespaceID  int64
	Enabled      bool
	RobotID      int64
	RobotName    string
	// ExternalReference is host[:port]/path of the source repository.
	ExternalReference string
	// Username and Password are stored encrypted (encfield), as Quay does;
	// "" when NULL.
	Username, Password string
	// RegistryConfig is external_registry_config, JSON.
	RegistryConfig       string
	SyncInterval         int // seconds
	SyncStartDate        *time.Time
	SyncExpirationDate   *time.Time
	SyncRetriesRemaining int
	SyncStatus           MirrorStatus
	SyncTransactionID    string
	RootRuleID           int64
	TagPatterns          []string
	SkopeoTimeout        int64
	ArchitectureFilter   []string
	CreationDate         time.Time
}

// FullName is "namespace/name" of the mirrored repository.
func (c *MirrorConfig) FullName() string { return c.Namespace + "/" + c.Repository }

// MirrorStore is the repository mirroring part of the store: Quay's
// repomirrorconfig and repomirrorrule, claimed by workers with Quay's
// optimistic lock on sync_transaction_id, so it works the same on SQLite
// and PostgreSQL and alongside Quay's own workers.
type MirrorStore interface {
	// CreateMirror writes the rule and the configuration, puts the
	// repository in state MIRROR and gives the robot write when it has less,
	// in one transaction. ErrExists when the repository has a configuration.
	CreateMirror(ctx context.Context, c *MirrorConfig) error
	// MirrorByRepository reads the configuration (ErrNotFound when none).
	MirrorByRepository(ctx context.Context, repositoryID int64) (*MirrorConfig, error)
	// UpdateMirror writes the user-settable fields and the rule's globs.
	UpdateMirror(ctx context.Context, c *MirrorConfig) error
	// DueMirrors lists configurations a worker should sync now: repository
	// in state MIRROR and SYNC_NOW; or enabled, started, retries left and
	// not SYNCING; or SYNCING with an expired claim.
	DueMirrors(ctx context.Context, limit int) ([]MirrorConfig, error)
	// ClaimMirror sets SYNCING with a new transaction id, only if the row
	// still has c's transaction id; false when another worker won. On
	// success c holds the new id and status.
	ClaimMirror(ctx context.Context, c *MirrorConfig) (bool, error)
	// ReleaseMirror ends a claimed sync with status (SUCCESS or FAIL), as
	// Quay's release_mirror: a failure uses up a retry; success, or the last
	// retry, moves the start to the next interval and refills the retries.
	// false when the claim was lost (cancelled or taken over).
	ReleaseMirror(ctx context.Context, c *MirrorConfig, status MirrorStatus) (bool, error)
	// MirrorSyncNow asks for a sync at once (not while SYNCING: false).
	MirrorSyncNow(ctx context.Context, repositoryID int64) (bool, error)
	// MirrorSyncCancel cancels a SYNCING or SYNC_NOW mirror (false when
	// neither).
	MirrorSyncCancel(ctx context.Context, repositoryID int64) (bool, error)
	// MirrorRobotID is the robot of the repository's mirror configuration
	// (ErrNotFound when it has none).
	MirrorRobotID(ctx context.Context, repositoryID int64) (int64, error)
}

var _ MirrorStore = (*DB)(nil)

const mirrorColumns = `m.id, m.repository_id, ns.username, r.name, r.state, r.namespace_user_id, m.is_enabled,
	m.internal_robot_id, COALESCE(rb.username, ''), m.external_reference,
	COALESCE(m.external_registry_username, ''), COALESCE(m.external_registry_password, ''), m.external_registry_config,
	m.sync_interval, m.sync_start_date, m.sync_expiration_date, m.sync_retries_remaining, m.sync_status,
	COALESCE(m.sync_transaction_id, ''), m.root_rule_id, COALESCE(rule.rule_value, '[]'), m.skopeo_timeout,
	COALESCE(m.architecture_filter, ''), m.creation_date`

const mirrorFrom = ` FROM repomirrorconfig m
	JOIN repository r ON r.id = m.repository_id
	JOIN "user" ns ON ns.id = r.namespace_user_id
	LEFT JOIN "user" rb ON rb.id = m.internal_robot_id
	LEFT JOIN repomirrorrule rule ON rule.id = m.root_rule_id`

func scanMirror(row interface{ Scan(...any) error }) (*MirrorConfig, error) {
	var (
		c                   MirrorConfig
		start, exp, created nullTime
		rule, arch          string
		status              int
	)
	if err := row.Scan(&c.ID, &c.RepositoryID, &c.Namespace, &c.Repository, &c.RepoState, &c.NamespaceID, &c.Enabled,
		&c.RobotID, &c.RobotName, &c.ExternalReference, &c.Username, &c.Password, &c.RegistryConfig,
		&c.SyncInterval, &start, &exp, &c.SyncRetriesRemaining, &status, &c.SyncTransactionID, &c.RootRuleID, &rule,
		&c.SkopeoTimeout, &arch, &created); err != nil {
		return nil, err
	}
	c.SyncStatus = MirrorStatus(status)
	c.SyncStartDate, c.SyncExpirationDate = start.ptr(), exp.ptr()
	c.CreationDate = created.Time
	if err := json.Unmarshal([]byte(rule), &c.TagPatterns); err != nil {
		c.TagPatterns = []string{rule} // not Quay's JSON list: keep the text as one pattern
	}
	if arch != "" {
		_ = json.Unmarshal([]byte(arch), &c.ArchitectureFilter)
	}
	return &c, nil
}

func jsonList(v []string) string {
	if v == nil {
		v = []string{}
	}
	b, _ := json.Marshal(v)
	return string(b)
}

func (db *DB) tsPtr(t *time.Time) any {
	if t == nil {
		return nil
	}
	return db.d.ts(*t)
}

// CreateMirror implements MirrorStore.
func (db *DB) CreateMirror(ctx context.Context, c *MirrorConfig) error {
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := db.queryRow(ctx, tx, `SELECT COUNT(*) FROM repomirrorconfig WHERE repository_id = ?`, c.RepositoryID).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return ErrExists
		}
		now := db.now()
		var ruleID int64
		if err := db.queryRow(ctx, tx, `INSERT INTO repomirrorrule (uuid, repository_id, creation_date, rule_type, rule_value)
			VALUES (?, ?, ?, ?, ?) RETURNING id`, uuid.NewString(), c.RepositoryID, db.d.ts(now), MirrorRuleTagGlob,
			jsonList(c.TagPatterns)).Scan(&ruleID); err != nil {
			return fmt.Errorf("insert repomirrorrule: %w", err)
		}
		if c.RegistryConfig == "" {
			c.RegistryConfig = "{}"
		}
		if c.SyncRetriesRemaining == 0 {
			c.SyncRetriesRemaining = MirrorMaxRetries
		}
		if c.SkopeoTimeout == 0 {
			c.SkopeoTimeout = 300
		}
		c.SyncTransactionID = uuid.NewString()
		if err := db.queryRow(ctx, tx, `INSERT INTO repomirrorconfig (repository_id, creation_date, is_enabled, mirror_type,
			internal_robot_id, external_registry_username, external_registry_config, sync_interval, sync_start_date,
			sync_expiration_date, sync_retries_remaining, sync_status, sync_transaction_id, root_rule_id, external_reference,
			external_registry_password, skopeo_timeout, architecture_filter)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
			c.RepositoryID, db.d.ts(now), c.Enabled, MirrorTypePull, c.RobotID, nullString(c.Username), c.RegistryConfig,
			c.SyncInterval, db.tsPtr(c.SyncStartDate), c.SyncRetriesRemaining, int(c.SyncStatus), c.SyncTransactionID,
			ruleID, c.ExternalReference, nullString(c.Password), c.SkopeoTimeout, jsonList(c.ArchitectureFilter)).Scan(&c.ID); err != nil {
			if isUniqueViolation(err) {
				return ErrExists
			}
			return fmt.Errorf("insert repomirrorconfig: %w", err)
		}
		c.RootRuleID, c.CreationDate = ruleID, now
		if _, err := db.exec(ctx, tx, `UPDATE repository SET state = ? WHERE id = ?`, RepoStateMirror, c.RepositoryID); err != nil {
			return fmt.Errorf("set repository state: %w", err)
		}
		// Quay gives the robot write when it holds less.
		var role sql.NullString
		err := db.queryRow(ctx, tx, `SELECT ro.name FROM repositorypermission p JOIN role ro ON ro.id = p.role_id
			WHERE p.repository_id = ? AND p.user_id = ?`, c.RepositoryID, c.RobotID).Scan(&role)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("robot permission: %w", err)
		}
		if Role(role.String).Rank() < RoleWrite.Rank() {
			if _, err := db.exec(ctx, tx, `DELETE FROM repositorypermission WHERE repository_id = ? AND user_id = ?`, c.RepositoryID, c.RobotID); err != nil {
				return fmt.Errorf("robot permission: %w", err)
			}
			if _, err := db.exec(ctx, tx, `INSERT INTO repositorypermission (repository_id, user_id, role_id)
				SELECT ?, ?, id FROM role WHERE name = ?`, c.RepositoryID, c.RobotID, string(RoleWrite)); err != nil {
				return fmt.Errorf("grant robot write: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("create mirror of repository id %d: %w", c.RepositoryID, err)
	}
	return nil
}

// MirrorByRepository implements MirrorStore.
func (db *DB) MirrorByRepository(ctx context.Context, repositoryID int64) (*MirrorConfig, error) {
	c, err := scanMirror(db.queryRow(ctx, db.r, `SELECT `+mirrorColumns+mirrorFrom+` WHERE m.repository_id = ?`, repositoryID))
	if err != nil {
		return nil, notFound(err, fmt.Sprintf("mirror of repository id %d", repositoryID))
	}
	return c, nil
}

// UpdateMirror implements MirrorStore.
func (db *DB) UpdateMirror(ctx context.Context, c *MirrorConfig) error {
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		res, err := db.exec(ctx, tx, `UPDATE repomirrorconfig SET is_enabled = ?, internal_robot_id = ?,
			external_registry_username = ?, external_registry_password = ?, external_registry_config = ?,
			sync_interval = ?, sync_start_date = ?, skopeo_timeout = ?, external_reference = ?, architecture_filter = ?
			WHERE id = ?`, c.Enabled, c.RobotID, nullString(c.Username), nullString(c.Password), c.RegistryConfig,
			c.SyncInterval, db.tsPtr(c.SyncStartDate), c.SkopeoTimeout, c.ExternalReference, jsonList(c.ArchitectureFilter), c.ID)
		if err != nil {
			return err
		}
		if err := checkAffected(res, "repomirrorconfig"); err != nil {
			return err
		}
		_, err = db.exec(ctx, tx, `UPDATE repomirrorrule SET rule_value = ? WHERE id = ?`, jsonList(c.TagPatterns), c.RootRuleID)
		return err
	})
	if err != nil {
		return fmt.Errorf("update mirror of repository id %d: %w", c.RepositoryID, err)
	}
	return nil
}

// DueMirrors implements MirrorStore.
func (db *DB) DueMirrors(ctx context.Context, limit int) ([]MirrorConfig, error) {
	if limit <= 0 {
		limit = 100
	}
	now := db.d.ts(db.now())
	rows, err := db.query(ctx, db.r, `SELECT `+mirrorColumns+mirrorFrom+`
		WHERE r.state = ? AND (m.sync_status = ?
			OR (m.is_enabled = true AND m.sync_start_date <= ? AND m.sync_retries_remaining > 0 AND m.sync_status <> ?)
			OR (m.sync_status = ? AND m.sync_expiration_date <= ?))
		ORDER BY m.sync_start_date, m.id LIMIT ?`,
		RepoStateMirror, int(MirrorSyncNow), now, int(MirrorSyncing), int(MirrorSyncing), now, limit)
	if err != nil {
		return nil, fmt.Errorf("list due mirrors: %w", err)
	}
	defer rows.Close()
	var out []MirrorConfig
	for rows.Next() {
		c, err := scanMirror(rows)
		if err != nil {
			return nil, fmt.Errorf("list due mirrors: %w", err)
		}
		out = append(out, *c)
	}
	return out, rows.Err()
}

// ClaimMirror implements MirrorStore.
func (db *DB) ClaimMirror(ctx context.Context, c *MirrorConfig) (bool, error) {
	txid := uuid.NewString()
	exp := db.now().Add(MirrorClaimDuration)
	res, err := db.exec(ctx, db.w, `UPDATE repomirrorconfig SET sync_status = ?, sync_expiration_date = ?, sync_transaction_id = ?
		WHERE id = ? AND COALESCE(sync_transaction_id, '') = ?`, int(MirrorSyncing), db.d.ts(exp), txid, c.ID, c.SyncTransactionID)
	if err != nil {
		return false, fmt.Errorf("claim mirror of %s: %w", c.FullName(), err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return false, err
	}
	c.SyncTransactionID, c.SyncStatus, c.SyncExpirationDate = txid, MirrorSyncing, &exp
	return true, nil
}

// ReleaseMirror implements MirrorStore.
func (db *DB) ReleaseMirror(ctx context.Context, c *MirrorConfig, status MirrorStatus) (bool, error) {
	retries := c.SyncRetriesRemaining
	if status == MirrorFail {
		retries = max(0, retries-1)
	}
	next := c.SyncStartDate
	if status == MirrorSuccess || retries < 1 {
		now := db.now()
		start := now
		if c.SyncStartDate != nil {
			start = *c.SyncStartDate
		}
		interval := time.Duration(max(c.SyncInterval, 1)) * time.Second
		// The next slot of the schedule after now, as Quay computes it.
		n := start
		if !n.After(now) {
			n = start.Add(interval * (now.Sub(start)/interval + 1))
		}
		next = &n
		retries = MirrorMaxRetries
	}
	res, err := db.exec(ctx, db.w, `UPDATE repomirrorconfig SET sync_status = ?, sync_start_date = ?, sync_expiration_date = NULL,
		sync_retries_remaining = ?, sync_transaction_id = ? WHERE id = ? AND sync_transaction_id = ?`,
		int(status), db.tsPtr(next), retries, uuid.NewString(), c.ID, c.SyncTransactionID)
	if err != nil {
		return false, fmt.Errorf("release mirror of %s: %w", c.FullName(), err)
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

// MirrorSyncNow implements MirrorStore.
func (db *DB) MirrorSyncNow(ctx context.Context, repositoryID int64) (bool, error) {
	res, err := db.exec(ctx, db.w, `UPDATE repomirrorconfig SET sync_status = ?, sync_expiration_date = NULL,
		sync_retries_remaining = CASE WHEN sync_retries_remaining < 1 THEN 1 ELSE sync_retries_remaining END,
		sync_transaction_id = ? WHERE repository_id = ? AND sync_status <> ?`,
		int(MirrorSyncNow), uuid.NewString(), repositoryID, int(MirrorSyncing))
	if err != nil {
		return false, fmt.Errorf("request mirror sync of repository id %d: %w", repositoryID, err)
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

// MirrorSyncCancel implements MirrorStore. A new transaction id makes the
// running worker's claim stale, which is how it learns of the cancel.
func (db *DB) MirrorSyncCancel(ctx context.Context, repositoryID int64) (bool, error) {
	res, err := db.exec(ctx, db.w, `UPDATE repomirrorconfig SET sync_status = ?, sync_expiration_date = NULL,
		sync_retries_remaining = 0, sync_start_date = NULL, sync_transaction_id = ?
		WHERE repository_id = ? AND sync_status IN (?, ?)`,
		int(MirrorCancel), uuid.NewString(), repositoryID, int(MirrorSyncing), int(MirrorSyncNow))
	if err != nil {
		return false, fmt.Errorf("cancel mirror sync of repository id %d: %w", repositoryID, err)
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

// MirrorRobotID implements MirrorStore.
func (db *DB) MirrorRobotID(ctx context.Context, repositoryID int64) (int64, error) {
	var id int64
	err := db.queryRow(ctx, db.r, `SELECT internal_robot_id FROM repomirrorconfig WHERE repository_id = ?`, repositoryID).Scan(&id)
	if err != nil {
		return 0, notFound(err, fmt.Sprintf("mirror of repository id %d", repositoryID))
	}
	return id, nil
}
