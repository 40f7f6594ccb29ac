package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
)

// Quota limit types, Quay's `quotatype` names (looked up by name: ids
// differ between databases).
const (
	QuotaWarning = "Warning"
	QuotaReject  = "Reject"
)

// Quota is a userorganizationquota row with its quotalimits rows.
type Quota struct {
	ID          int64
	NamespaceID int64
	LimitBytes  int64
	Limits      []QuotaLimit // by id
}

// QuotaLimit is a quotalimits row with its quotatype name resolved.
type QuotaLimit struct {
	ID      int64
	QuotaID int64
	Type    string // QuotaWarning or QuotaReject
	Percent int    // percent_of_limit, 1..100
}

// Bytes is the size at which the limit applies: limit_bytes*percent/100.
func (l QuotaLimit) Bytes(limitBytes int64) int64 {
	return limitBytes/100*int64(l.Percent) + limitBytes%100*int64(l.Percent)/100
}

// QuotaSize is a quotanamespacesize or quotarepositorysize row.
type QuotaSize struct {
	SizeBytes        int64
	BackfillStartMs  *int64
	BackfillComplete bool
}

// RegistrySize is the quotaregistrysize row.
type RegistrySize struct {
	SizeBytes   int64
	Running     bool
	Queued      bool
	CompletedMs *int64
}

// QuotaPolicy is how the store keeps and enforces sizes
// (FEATURE_QUOTA_MANAGEMENT and friends); the zero value tracks nothing.
type QuotaPolicy struct {
	// Track keeps quotarepositorysize/quotanamespacesize equal to a recount
	// in every transaction that changes manifestblob. Off, those
	// transactions only mark existing rows as needing a backfill, so sizes
	// recorded before are never trusted while they may be stale.
	Track bool
	// Verify (FEATURE_VERIFY_QUOTA) refuses, inside the push's own
	// transaction, a manifest that would take its namespace over a Reject
	// limit (QuotaExceededError).
	Verify bool
	// DefaultRejectBytes (DEFAULT_SYSTEM_REJECT_QUOTA_BYTES) is the Reject
	// limit of namespaces without a quota; 0: none.
	DefaultRejectBytes int64
}

// QuotaExceededError refuses a push that would take a namespace over its
// Reject limit. Use errors.As.
type QuotaExceededError struct {
	NamespaceID int64
	SizeBytes   int64 // the namespace's size had the push gone through
	LimitBytes  int64 // the Reject threshold in bytes
}

func (e QuotaExceededError) Error() string {
	return fmt.Sprintf("quota exceeded on namespace id %d: %d bytes would exceed the reject limit of %d bytes",
		e.NamespaceID, e.SizeBytes, e.LimitBytes)
}

// QuotaVerdict is where a namespace stands against its limits.
type QuotaVerdict struct {
	SizeBytes    int64
	LimitBytes   int64  // the quota's limit_bytes (or the default reject bytes); 0: no quota
	Severity     string // "", QuotaWarning or QuotaReject: the highest limit exceeded
	ThresholdB   int64  // bytes of that limit
	DefaultQuota bool   // the limit is DEFAULT_SYSTEM_REJECT_QUOTA_BYTES
}

// QuotaStore is quota management: Quay's quota tables (quota.go). DB
// implements it.
type QuotaStore interface {
	// Quotas and limits. CreateQuota: ErrExists when the namespace has one
	// (Quay allows one per namespace).
	NamespaceQuota(ctx context.Context, namespaceID int64) (*Quota, error) // ErrNotFound when none
	CreateQuota(ctx context.Context, namespaceID, limitBytes int64) (*Quota, error)
	UpdateQuota(ctx context.Context, quotaID, limitBytes int64) error
	DeleteQuota(ctx context.Context, quotaID int64) error // with its limits
	// CreateQuotaLimit: ErrExists for a second limit of the same type and
	// percent, or a second Reject limit; InvalidInputError for an unknown
	// type or a percent outside 1..100.
	CreateQuotaLimit(ctx context.Context, quotaID int64, typ string, percent int) (*QuotaLimit, error)
	UpdateQuotaLimit(ctx context.Context, limitID int64, typ string, percent int) error
	DeleteQuotaLimit(ctx context.Context, limitID int64) error

	// Sizes. NamespaceSize and RepositorySize read the recorded rows
	// (ErrNotFound when none); the Recount functions compute from the
	// manifest and blob tables.
	NamespaceSize(ctx context.Context, namespaceID int64) (*QuotaSize, error)
	RepositorySize(ctx context.Context, repositoryID int64) (*QuotaSize, error)
	RecountNamespace(ctx context.Context, namespaceID int64) (int64, error)
	RecountRepository(ctx context.Context, repositoryID int64) (int64, error)
	// NamespaceHasBlob reports whether a manifest of the namespace already
	// references the blob (then it adds nothing to the namespace's size).
	NamespaceHasBlob(ctx context.Context, namespaceID int64, digest string) (bool, error)
	// CheckQuota evaluates the namespace's size plus extra bytes against
	// its limits (or DefaultRejectBytes).
	CheckQuota(ctx context.Context, namespaceID, extra int64) (*QuotaVerdict, error)
	// BackfillQuotaSizes computes the sizes of up to limit namespaces
	// (users and organisations, not robots) that have no size row or whose
	// backfill is not complete, as Quay's quotatotalworker; it returns how
	// many it computed.
	BackfillQuotaSizes(ctx context.Context, limit int) (int, error)
	// QueueRegistrySize asks for a registry size recount; UpdateRegistrySize
	// does it when queued and not running (Quay's quotaregistrysizeworker)
	// and reports whether it ran.
	QueueRegistrySize(ctx context.Context) error
	UpdateRegistrySize(ctx context.Context) (bool, error)
	RegistrySize(ctx context.Context) (*RegistrySize, error) // ErrNotFound before the first queue
}

// SetQuotaPolicy sets how this store keeps and enforces quota sizes (once,
// at start-up; every manifest transaction reads it).
func (db *DB) SetQuotaPolicy(p QuotaPolicy) { db.quota.Store(&p) }

func (db *DB) quotaPolicy() QuotaPolicy {
	if p := db.quota.Load(); p != nil {
		return *p
	}
	return QuotaPolicy{}
}

// The size queries: the sum of image_size over the distinct blobs that
// manifests of the repository (of the namespace's repositories) reference,
// as Quay's data/model/quota.py. An index's children are manifests of the
// same repository, so their blobs are counted through them, once.
const (
	repoSizeSQL = `SELECT COALESCE(SUM(s.image_size), 0) FROM imagestorage s
		WHERE s.id IN (SELECT mb.blob_id FROM manifestblob mb WHERE mb.repository_id = ?)`
	namespaceSizeSQL = `SELECT COALESCE(SUM(s.image_size), 0) FROM imagestorage s
		WHERE s.id IN (SELECT mb.blob_id FROM manifestblob mb JOIN repository r ON r.id = mb.repository_id
			WHERE r.namespace_user_id = ?)`
)

// RecountRepository computes a repository's size from its manifests.
func (db *DB) RecountRepository(ctx context.Context, repositoryID int64) (int64, error) {
	var n int64
	if err := db.queryRow(ctx, db.r, repoSizeSQL, repositoryID).Scan(&n); err != nil {
		return 0, fmt.Errorf("recount size of repository id %d: %w", repositoryID, err)
	}
	return n, nil
}

// RecountNamespace computes a namespace's size from its repositories'
// manifests.
func (db *DB) RecountNamespace(ctx context.Context, namespaceID int64) (int64, error) {
	var n int64
	if err := db.queryRow(ctx, db.r, namespaceSizeSQL, namespaceID).Scan(&n); err != nil {
		return 0, fmt.Errorf("recount size of namespace id %d: %w", namespaceID, err)
	}
	return n, nil
}

func scanQuotaSize(row *sql.Row) (*QuotaSize, error) {
	var (
		s     QuotaSize
		start sql.NullInt64
	)
	if err := row.Scan(&s.SizeBytes, &start, &s.BackfillComplete); err != nil {
		return nil, err
	}
	if start.Valid {
		v := start.Int64
		s.BackfillStartMs = &v
	}
	return &s, nil
}

// NamespaceSize reads the recorded size of a namespace.
func (db *DB) NamespaceSize(ctx context.Context, namespaceID int64) (*QuotaSize, error) {
	s, err := scanQuotaSize(db.queryRow(ctx, db.r, `SELECT size_bytes, backfill_start_ms, backfill_complete
		FROM quotanamespacesize WHERE namespace_user_id = ?`, namespaceID))
	if err != nil {
		return nil, notFound(err, fmt.Sprintf("size of namespace id %d", namespaceID))
	}
	return s, nil
}

// RepositorySize reads the recorded size of a repository.
func (db *DB) RepositorySize(ctx context.Context, repositoryID int64) (*QuotaSize, error) {
	s, err := scanQuotaSize(db.queryRow(ctx, db.r, `SELECT size_bytes, backfill_start_ms, backfill_complete
		FROM quotarepositorysize WHERE repository_id = ?`, repositoryID))
	if err != nil {
		return nil, notFound(err, fmt.Sprintf("size of repository id %d", repositoryID))
	}
	return s, nil
}

// NamespaceHasBlob reports whether a manifest of the namespace references
// the blob.
func (db *DB) NamespaceHasBlob(ctx context.Context, namespaceID int64, digest string) (bool, error) {
	var ok bool
	err := db.queryRow(ctx, db.r, `SELECT EXISTS (SELECT 1 FROM manifestblob mb
		JOIN repository r ON r.id = mb.repository_id JOIN imagestorage s ON s.id = mb.blob_id
		WHERE r.namespace_user_id = ? AND s.content_checksum = ?)`, namespaceID, digest).Scan(&ok)
	if err != nil {
		return false, fmt.Errorf("blob %s in namespace id %d: %w", digest, namespaceID, err)
	}
	return ok, nil
}

// lockNamespaceSize makes sure the namespace's size row exists and, on
// PostgreSQL, locks it until the transaction ends: every transaction that
// changes the namespace's manifestblob rows with tracking on goes through
// here, so their recounts run one after another and each sees the rows the
// previous one committed (READ COMMITTED takes a new snapshot per
// statement). SQLite has a single writer already.
func (db *DB) lockNamespaceSize(ctx context.Context, tx *sql.Tx, namespaceID int64) error {
	if _, err := db.exec(ctx, tx, `INSERT INTO quotanamespacesize (namespace_user_id, size_bytes, backfill_start_ms, backfill_complete)
		VALUES (?, 0, NULL, false) ON CONFLICT (namespace_user_id) DO NOTHING`, namespaceID); err != nil {
		return fmt.Errorf("namespace size row: %w", err)
	}
	if db.d.pg {
		var id int64
		if err := db.queryRow(ctx, tx, `SELECT id FROM quotanamespacesize WHERE namespace_user_id = ? FOR UPDATE`, namespaceID).Scan(&id); err != nil {
			return fmt.Errorf("lock namespace size: %w", err)
		}
	}
	return nil
}

// recountRepositoryTx stores a repository's recount.
func (db *DB) recountRepositoryTx(ctx context.Context, tx *sql.Tx, repositoryID, nowMs int64) error {
	var n int64
	if err := db.queryRow(ctx, tx, repoSizeSQL, repositoryID).Scan(&n); err != nil {
		return fmt.Errorf("recount repository size: %w", err)
	}
	if _, err := db.exec(ctx, tx, `INSERT INTO quotarepositorysize (repository_id, size_bytes, backfill_start_ms, backfill_complete)
		VALUES (?, ?, ?, true) ON CONFLICT (repository_id) DO UPDATE SET size_bytes = excluded.size_bytes,
		backfill_start_ms = COALESCE(quotarepositorysize.backfill_start_ms, excluded.backfill_start_ms), backfill_complete = true`,
		repositoryID, n, nowMs); err != nil {
		return fmt.Errorf("store repository size: %w", err)
	}
	return nil
}

// recountNamespaceTx stores a namespace's recount (its row is locked) and
// returns it with the size recorded before.
func (db *DB) recountNamespaceTx(ctx context.Context, tx *sql.Tx, namespaceID, nowMs int64) (before, after int64, err error) {
	if err := db.queryRow(ctx, tx, `SELECT size_bytes FROM quotanamespacesize WHERE namespace_user_id = ?`, namespaceID).Scan(&before); err != nil {
		return 0, 0, fmt.Errorf("namespace size: %w", err)
	}
	if err := db.queryRow(ctx, tx, namespaceSizeSQL, namespaceID).Scan(&after); err != nil {
		return 0, 0, fmt.Errorf("recount namespace size: %w", err)
	}
	if _, err := db.exec(ctx, tx, `UPDATE quotanamespacesize SET size_bytes = ?, backfill_complete = true,
		backfill_start_ms = COALESCE(backfill_start_ms, ?) WHERE namespace_user_id = ?`, after, nowMs, namespaceID); err != nil {
		return 0, 0, fmt.Errorf("store namespace size: %w", err)
	}
	return before, after, nil
}

// quotaChanged is the hook of every transaction that adds or removes
// manifestblob rows of the repositories (all in one namespace): it
// recounts the repositories and their namespace under the namespace's lock
// (tracking on), or marks their recorded sizes stale (tracking off). With
// enforce, a namespace that grew over its Reject limit fails the
// transaction with QuotaExceededError.
func (db *DB) quotaChanged(ctx context.Context, tx *sql.Tx, enforce bool, repoIDs ...int64) error {
	if len(repoIDs) == 0 {
		return nil
	}
	var nsID int64
	if err := db.queryRow(ctx, tx, `SELECT namespace_user_id FROM repository WHERE id = ?`, repoIDs[0]).Scan(&nsID); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil // purged in this transaction; the namespace is handled by the caller
		}
		return fmt.Errorf("namespace of repository: %w", err)
	}
	p := db.quotaPolicy()
	if !p.Track {
		return db.markQuotaStale(ctx, tx, nsID, repoIDs...)
	}
	if err := db.lockNamespaceSize(ctx, tx, nsID); err != nil {
		return err
	}
	nowMs := db.nowMs()
	for _, id := range repoIDs {
		if err := db.recountRepositoryTx(ctx, tx, id, nowMs); err != nil {
			return err
		}
	}
	before, after, err := db.recountNamespaceTx(ctx, tx, nsID, nowMs)
	if err != nil {
		return err
	}
	if enforce && p.Verify && after > before {
		v, err := db.verdict(ctx, tx, nsID, after, p)
		if err != nil {
			return err
		}
		if v.Severity == QuotaReject {
			return QuotaExceededError{NamespaceID: nsID, SizeBytes: after, LimitBytes: v.ThresholdB}
		}
	}
	return nil
}

// namespaceQuotaChanged recounts a namespace whose repository was purged.
func (db *DB) namespaceQuotaChanged(ctx context.Context, tx *sql.Tx, nsID int64) error {
	if !db.quotaPolicy().Track {
		return db.markQuotaStale(ctx, tx, nsID)
	}
	if err := db.lockNamespaceSize(ctx, tx, nsID); err != nil {
		return err
	}
	_, _, err := db.recountNamespaceTx(ctx, tx, nsID, db.nowMs())
	return err
}

// markQuotaStale makes recorded sizes wait for a backfill. Rows already
// marked are not touched (no row lock is taken for them).
func (db *DB) markQuotaStale(ctx context.Context, tx *sql.Tx, nsID int64, repoIDs ...int64) error {
	if _, err := db.exec(ctx, tx, `UPDATE quotanamespacesize SET backfill_complete = false, backfill_start_ms = NULL
		WHERE namespace_user_id = ? AND (backfill_complete = true OR backfill_start_ms IS NOT NULL)`, nsID); err != nil {
		return fmt.Errorf("mark namespace size stale: %w", err)
	}
	for _, id := range repoIDs {
		if _, err := db.exec(ctx, tx, `UPDATE quotarepositorysize SET backfill_complete = false, backfill_start_ms = NULL
			WHERE repository_id = ? AND (backfill_complete = true OR backfill_start_ms IS NOT NULL)`, id); err != nil {
			return fmt.Errorf("mark repository size stale: %w", err)
		}
	}
	return nil
}

// Limits ----------------------------------------------------------------------

func (db *DB) quotaWhere(ctx context.Context, q queryer, where string, arg any) (*Quota, error) {
	var qu Quota
	if err := db.queryRow(ctx, q, `SELECT id, namespace_id, limit_bytes FROM userorganizationquota WHERE `+where, arg).
		Scan(&qu.ID, &qu.NamespaceID, &qu.LimitBytes); err != nil {
		return nil, err
	}
	rows, err := db.query(ctx, q, `SELECT l.id, l.quota_id, t.name, l.percent_of_limit FROM quotalimits l
		JOIN quotatype t ON t.id = l.quota_type_id WHERE l.quota_id = ? ORDER BY l.id`, qu.ID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var l QuotaLimit
		if err := rows.Scan(&l.ID, &l.QuotaID, &l.Type, &l.Percent); err != nil {
			return nil, err
		}
		qu.Limits = append(qu.Limits, l)
	}
	return &qu, rows.Err()
}

// NamespaceQuota reads a namespace's quota with its limits.
func (db *DB) NamespaceQuota(ctx context.Context, namespaceID int64) (*Quota, error) {
	q, err := db.quotaWhere(ctx, db.r, `namespace_id = ?`, namespaceID)
	if err != nil {
		return nil, notFound(err, fmt.Sprintf("quota of namespace id %d", namespaceID))
	}
	return q, nil
}

// CreateQuota creates a namespace's quota.
func (db *DB) CreateQuota(ctx context.Context, namespaceID, limitBytes int64) (*Quota, error) {
	if limitBytes <= 0 {
		return nil, InvalidInputError{Field: "quota limit", Value: fmt.Sprint(limitBytes), Reason: "must be a positive number of bytes"}
	}
	q := &Quota{NamespaceID: namespaceID, LimitBytes: limitBytes}
	err := db.queryRow(ctx, db.w, `INSERT INTO userorganizationquota (namespace_id, limit_bytes) VALUES (?, ?) RETURNING id`,
		namespaceID, limitBytes).Scan(&q.ID)
	if isUniqueViolation(err) {
		return nil, fmt.Errorf("quota of namespace id %d: %w", namespaceID, ErrExists)
	}
	if err != nil {
		return nil, fmt.Errorf("create quota of namespace id %d: %w", namespaceID, err)
	}
	return q, nil
}

// UpdateQuota changes a quota's limit.
func (db *DB) UpdateQuota(ctx context.Context, quotaID, limitBytes int64) error {
	if limitBytes <= 0 {
		return InvalidInputError{Field: "quota limit", Value: fmt.Sprint(limitBytes), Reason: "must be a positive number of bytes"}
	}
	res, err := db.exec(ctx, db.w, `UPDATE userorganizationquota SET limit_bytes = ? WHERE id = ?`, limitBytes, quotaID)
	if err != nil {
		return fmt.Errorf("update quota id %d: %w", quotaID, err)
	}
	return checkAffected(res, fmt.Sprintf("quota id %d", quotaID))
}

// DeleteQuota removes a quota and its limits.
func (db *DB) DeleteQuota(ctx context.Context, quotaID int64) error {
	return db.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := db.exec(ctx, tx, `DELETE FROM quotalimits WHERE quota_id = ?`, quotaID); err != nil {
			return fmt.Errorf("delete limits of quota id %d: %w", quotaID, err)
		}
		res, err := db.exec(ctx, tx, `DELETE FROM userorganizationquota WHERE id = ?`, quotaID)
		if err != nil {
			return fmt.Errorf("delete quota id %d: %w", quotaID, err)
		}
		return checkAffected(res, fmt.Sprintf("quota id %d", quotaID))
	})
}

// normalizeLimit checks a limit's type (case-insensitive, as Quay) and
// percent.
func normalizeLimit(typ string, percent int) (string, error) {
	var t string
	switch strings.ToLower(strings.TrimSpace(typ)) {
	case "warning":
		t = QuotaWarning
	case "reject":
		t = QuotaReject
	default:
		return "", InvalidInputError{Field: "quota limit type", Value: typ, Reason: `use "Warning" or "Reject"`}
	}
	if percent < 1 || percent > 100 {
		return "", InvalidInputError{Field: "quota limit threshold_percent", Value: fmt.Sprint(percent), Reason: "must be between 1 and 100"}
	}
	return t, nil
}

// checkLimitConflict refuses a duplicate limit, or a second Reject limit.
func (db *DB) checkLimitConflict(ctx context.Context, tx *sql.Tx, quotaID, exceptID int64, typ string, percent int) error {
	var dup, rejects int
	if err := db.queryRow(ctx, tx, `SELECT
		COALESCE(SUM(CASE WHEN t.name = ? AND l.percent_of_limit = ? THEN 1 ELSE 0 END), 0),
		COALESCE(SUM(CASE WHEN t.name = ? THEN 1 ELSE 0 END), 0)
		FROM quotalimits l JOIN quotatype t ON t.id = l.quota_type_id WHERE l.quota_id = ? AND l.id <> ?`,
		typ, percent, QuotaReject, quotaID, exceptID).Scan(&dup, &rejects); err != nil {
		return fmt.Errorf("limits of quota id %d: %w", quotaID, err)
	}
	if dup > 0 {
		return fmt.Errorf("a %s limit at %d%% already exists: %w", typ, percent, ErrExists)
	}
	if typ == QuotaReject && rejects > 0 {
		return fmt.Errorf("only one Reject limit is allowed per quota: %w", ErrExists)
	}
	return nil
}

// CreateQuotaLimit adds a Warning or Reject limit to a quota.
func (db *DB) CreateQuotaLimit(ctx context.Context, quotaID int64, typ string, percent int) (*QuotaLimit, error) {
	t, err := normalizeLimit(typ, percent)
	if err != nil {
		return nil, err
	}
	l := &QuotaLimit{QuotaID: quotaID, Type: t, Percent: percent}
	err = db.inTx(ctx, func(tx *sql.Tx) error {
		var exists bool
		if err := db.queryRow(ctx, tx, `SELECT EXISTS (SELECT 1 FROM userorganizationquota WHERE id = ?)`, quotaID).Scan(&exists); err != nil {
			return err
		}
		if !exists {
			return fmt.Errorf("quota id %d: %w", quotaID, ErrNotFound)
		}
		if err := db.checkLimitConflict(ctx, tx, quotaID, 0, t, percent); err != nil {
			return err
		}
		return db.queryRow(ctx, tx, `INSERT INTO quotalimits (quota_id, quota_type_id, percent_of_limit)
			VALUES (?, (SELECT id FROM quotatype WHERE name = ?), ?) RETURNING id`, quotaID, t, percent).Scan(&l.ID)
	})
	if err != nil {
		return nil, fmt.Errorf("create quota limit: %w", err)
	}
	return l, nil
}

// UpdateQuotaLimit changes a limit's type and percent.
func (db *DB) UpdateQuotaLimit(ctx context.Context, limitID int64, typ string, percent int) error {
	t, err := normalizeLimit(typ, percent)
	if err != nil {
		return err
	}
	return db.inTx(ctx, func(tx *sql.Tx) error {
		var quotaID int64
		if err := db.queryRow(ctx, tx, `SELECT quota_id FROM quotalimits WHERE id = ?`, limitID).Scan(&quotaID); err != nil {
			return notFound(err, fmt.Sprintf("quota limit id %d", limitID))
		}
		if err := db.checkLimitConflict(ctx, tx, quotaID, limitID, t, percent); err != nil {
			return err
		}
		_, err := db.exec(ctx, tx, `UPDATE quotalimits SET quota_type_id = (SELECT id FROM quotatype WHERE name = ?),
			percent_of_limit = ? WHERE id = ?`, t, percent, limitID)
		return err
	})
}

// DeleteQuotaLimit removes a limit.
func (db *DB) DeleteQuotaLimit(ctx context.Context, limitID int64) error {
	res, err := db.exec(ctx, db.w, `DELETE FROM quotalimits WHERE id = ?`, limitID)
	if err != nil {
		return fmt.Errorf("delete quota limit id %d: %w", limitID, err)
	}
	return checkAffected(res, fmt.Sprintf("quota limit id %d", limitID))
}

// verdict evaluates size against the namespace's limits: the highest
// threshold exceeded (size strictly above it) sets the severity.
func (db *DB) verdict(ctx context.Context, q queryer, nsID, size int64, p QuotaPolicy) (*QuotaVerdict, error) {
	v := &QuotaVerdict{SizeBytes: size}
	qu, err := db.quotaWhere(ctx, q, `namespace_id = ?`, nsID)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		if p.DefaultRejectBytes > 0 {
			v.LimitBytes, v.DefaultQuota = p.DefaultRejectBytes, true
			if size > p.DefaultRejectBytes {
				v.Severity, v.ThresholdB = QuotaReject, p.DefaultRejectBytes
			}
		}
		return v, nil
	case err != nil:
		return nil, fmt.Errorf("quota of namespace id %d: %w", nsID, err)
	}
	v.LimitBytes = qu.LimitBytes
	for _, l := range qu.Limits {
		th := l.Bytes(qu.LimitBytes)
		if size <= th {
			continue
		}
		switch {
		case l.Type == QuotaReject:
			v.Severity, v.ThresholdB = QuotaReject, th
		case v.Severity == "" || (v.Severity == QuotaWarning && th > v.ThresholdB):
			v.Severity, v.ThresholdB = QuotaWarning, th
		}
	}
	return v, nil
}

// CheckQuota evaluates the namespace's recorded size (a recount when no
// complete record exists) plus extra bytes against its limits.
func (db *DB) CheckQuota(ctx context.Context, namespaceID, extra int64) (*QuotaVerdict, error) {
	var size int64
	s, err := db.NamespaceSize(ctx, namespaceID)
	switch {
	case err == nil && s.BackfillComplete:
		size = s.SizeBytes
	case err == nil || errors.Is(err, ErrNotFound):
		if size, err = db.RecountNamespace(ctx, namespaceID); err != nil {
			return nil, err
		}
	default:
		return nil, err
	}
	return db.verdict(ctx, db.r, namespaceID, size+extra, db.quotaPolicy())
}

// Backfill and registry size ---------------------------------------------------

// BackfillQuotaSizes computes sizes of namespaces without a complete
// record, each in its own transaction under the namespace's lock.
func (db *DB) BackfillQuotaSizes(ctx context.Context, limit int) (int, error) {
	if limit <= 0 {
		limit = 100
	}
	ids, err := queryAll(ctx, db, "namespaces to backfill", `SELECT u.id FROM "user" u
		LEFT JOIN quotanamespacesize q ON q.namespace_user_id = u.id
		WHERE u.robot = false AND u.enabled = true AND (q.id IS NULL OR q.backfill_complete = false)
		ORDER BY u.id LIMIT ?`, []any{limit}, scanInt64)
	if err != nil {
		return 0, err
	}
	done := 0
	for _, nsID := range ids {
		err := db.inTx(ctx, func(tx *sql.Tx) error {
			if err := db.lockNamespaceSize(ctx, tx, nsID); err != nil {
				return err
			}
			nowMs := db.nowMs()
			if _, err := db.exec(ctx, tx, `UPDATE quotanamespacesize SET backfill_start_ms = ? WHERE namespace_user_id = ?`, nowMs, nsID); err != nil {
				return err
			}
			repos, err := queryAllTx(ctx, db, tx, `SELECT id FROM repository WHERE namespace_user_id = ? ORDER BY id`, nsID)
			if err != nil {
				return err
			}
			for _, r := range repos {
				if err := db.recountRepositoryTx(ctx, tx, r, nowMs); err != nil {
					return err
				}
			}
			_, _, err = db.recountNamespaceTx(ctx, tx, nsID, nowMs)
			return err
		})
		if err != nil {
			return done, fmt.Errorf("backfill size of namespace id %d: %w", nsID, err)
		}
		done++
	}
	if done > 0 {
		if err := db.QueueRegistrySize(ctx); err != nil {
			return done, err
		}
	}
	return done, nil
}

func scanInt64(rows *sql.Rows) (int64, error) {
	var v int64
	err := rows.Scan(&v)
	return v, err
}

func queryAllTx(ctx context.Context, db *DB, tx *sql.Tx, q string, args ...any) ([]int64, error) {
	rows, err := db.query(ctx, tx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		v, err := scanInt64(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// QueueRegistrySize marks the registry size for a recount, creating the
// single row when missing.
func (db *DB) QueueRegistrySize(ctx context.Context) error {
	return db.inTx(ctx, func(tx *sql.Tx) error {
		res, err := db.exec(ctx, tx, `UPDATE quotaregistrysize SET queued = true`)
		if err != nil {
			return fmt.Errorf("queue registry size: %w", err)
		}
		if n, _ := res.RowsAffected(); n > 0 {
			return nil
		}
		_, err = db.exec(ctx, tx, `INSERT INTO quotaregistrysize (size_bytes, running, queued, completed_ms) VALUES (0, false, true, NULL)`)
		return err
	})
}

// UpdateRegistrySize recounts the registry when queued and not running:
// the sum of image_size over every imagestorage row.
func (db *DB) UpdateRegistrySize(ctx context.Context) (bool, error) {
	var claimed bool
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		res, err := db.exec(ctx, tx, `UPDATE quotaregistrysize SET running = true, queued = false WHERE queued = true AND running = false`)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		claimed = n > 0
		return err
	})
	if err != nil || !claimed {
		return false, err
	}
	var size int64
	if err := db.queryRow(ctx, db.r, `SELECT COALESCE(SUM(image_size), 0) FROM imagestorage`).Scan(&size); err != nil {
		_, _ = db.exec(context.WithoutCancel(ctx), db.w, `UPDATE quotaregistrysize SET running = false, queued = true`)
		return false, fmt.Errorf("registry size: %w", err)
	}
	if _, err := db.exec(ctx, db.w, `UPDATE quotaregistrysize SET size_bytes = ?, running = false, completed_ms = ?`, size, db.nowMs()); err != nil {
		return false, fmt.Errorf("store registry size: %w", err)
	}
	return true, nil
}

// RegistrySize reads the quotaregistrysize row.
func (db *DB) RegistrySize(ctx context.Context) (*RegistrySize, error) {
	var (
		r    RegistrySize
		done sql.NullInt64
	)
	err := db.queryRow(ctx, db.r, `SELECT size_bytes, running, queued, completed_ms FROM quotaregistrysize ORDER BY id LIMIT 1`).
		Scan(&r.SizeBytes, &r.Running, &r.Queued, &done)
	if err != nil {
		return nil, notFound(err, "registry size")
	}
	if done.Valid {
		v := done.Int64
		r.CompletedMs = &v
	}
	return &r, nil
}
