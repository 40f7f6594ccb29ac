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

// Auto-prune in Quay's tables: namespaceautoprunepolicy holds the policies
// (JSON in `policy`, the stored form registry/autoprune writes), and
// autoprunetaskstatus one row per namespace that has policies, which
// workers claim so that each namespace is pruned by one worker at a time.

// AutoPrunePolicy is a namespaceautoprunepolicy row, or a
// repositoryautoprunepolicy row when RepositoryID is not 0; Policy is the
// stored JSON text.
type AutoPrunePolicy struct {
	UUID         string
	NamespaceID  int64
	RepositoryID int64
	Repository   string // the repository's name, for repository policies
	Policy       string
}

// AutoPruneTask is a claimed autoprunetaskstatus row with the namespace's
// policies at claim time: its own, and those of its repositories (in the
// NORMAL state).
type AutoPruneTask struct {
	ID                 int64
	NamespaceID        int64
	Namespace          string
	Policies           []AutoPrunePolicy
	RepositoryPolicies []AutoPrunePolicy
}

// Statuses of autoprunetaskstatus.status, as Quay writes them.
const (
	AutoPruneQueued  = "queued"
	AutoPruneRunning = "running"
	AutoPruneSuccess = "success"
)

// AutoPruneStore is the auto-prune part of the store.
type AutoPruneStore interface {
	// CreateNamespaceAutoPrunePolicy stores a policy and (re)queues the
	// namespace's task in one transaction; ErrExists when the namespace
	// already has the same policy.
	CreateNamespaceAutoPrunePolicy(ctx context.Context, namespaceID int64, policy string) (string, error)
	// NamespaceAutoPrunePolicies lists the namespace's policies, oldest first.
	NamespaceAutoPrunePolicies(ctx context.Context, namespaceID int64) ([]AutoPrunePolicy, error)
	// UpdateNamespaceAutoPrunePolicy replaces a policy and requeues the task
	// (ErrNotFound for an unknown uuid, ErrExists for a duplicate).
	UpdateNamespaceAutoPrunePolicy(ctx context.Context, namespaceID int64, uuid, policy string) error
	// DeleteNamespaceAutoPrunePolicy removes a policy (ErrNotFound when
	// absent). The task row stays; the worker removes it once no policy is
	// left, as Quay does.
	DeleteNamespaceAutoPrunePolicy(ctx context.Context, namespaceID int64, uuid string) error
	// The same for one repository's policies (repositoryautoprunepolicy);
	// they queue the task of the repository's namespace.
	CreateRepositoryAutoPrunePolicy(ctx context.Context, namespaceID, repositoryID int64, policy string) (string, error)
	RepositoryAutoPrunePolicies(ctx context.Context, repositoryID int64) ([]AutoPrunePolicy, error)
	UpdateRepositoryAutoPrunePolicy(ctx context.Context, namespaceID, repositoryID int64, uuid, policy string) error
	DeleteRepositoryAutoPrunePolicy(ctx context.Context, repositoryID int64, uuid string) error
	// ClaimAutoPruneTask takes the task of an enabled namespace that never
	// ran or last ran before now-minInterval, oldest first, marking it
	// running (PostgreSQL: FOR UPDATE SKIP LOCKED, so replicas never take the
	// same one). Tasks whose namespace has no policy left are deleted on the
	// way. nil when nothing is due.
	ClaimAutoPruneTask(ctx context.Context, minInterval time.Duration) (*AutoPruneTask, error)
	// FinishAutoPruneTask records the outcome ("success" or "failure: …").
	FinishAutoPruneTask(ctx context.Context, taskID int64, status string) error
	// AutoPruneTaskStatus reads a namespace's task (ErrNotFound when none).
	AutoPruneTaskStatus(ctx context.Context, namespaceID int64) (status string, lastRanMs *int64, err error)
	// NamespaceRepositories pages through a namespace's repositories in the
	// NORMAL state by id, strictly after afterID.
	NamespaceRepositories(ctx context.Context, namespaceID, afterID int64, limit int) ([]Repository, error)
	// PrunableTags lists a repository's alive, visible, mutable tags, newest
	// first (lifetime_start_ms, then id).
	PrunableTags(ctx context.Context, repositoryID int64) ([]Tag, error)
	// PruneTag ends the tag row as a tag DELETE does, and writes the audit
	// entry in the same transaction; false when the row is no longer alive
	// (another worker or a user got there first).
	PruneTag(ctx context.Context, t *Tag, audit LogEntry) (bool, error)
	// ActiveNamespaces pages through the enabled users and organisations
	// (not robots) by id, strictly after afterID.
	ActiveNamespaces(ctx context.Context, afterID int64, limit int) ([]User, error)
	// ClaimRegistryAutoPrune takes the registry-wide pass of
	// DEFAULT_NAMESPACE_AUTOPRUNE_POLICY when it is due and no replica
	// holds it (a hold ends after timeout). It returns the claim, or ""
	// when the pass is not due or is held elsewhere.
	ClaimRegistryAutoPrune(ctx context.Context, timeout time.Duration) (string, error)
	// FinishRegistryAutoPrune ends a claimed pass; it is due again after
	// period (ErrNotFound when the claim had expired and was taken over).
	FinishRegistryAutoPrune(ctx context.Context, claim string, period time.Duration) error
}

var _ AutoPruneStore = (*DB)(nil)

// requeueAutoPrune makes the namespace's task due at once.
func (db *DB) requeueAutoPrune(ctx context.Context, tx *sql.Tx, namespaceID int64) error {
	_, err := db.exec(ctx, tx, `INSERT INTO autoprunetaskstatus (namespace_id, last_ran_ms, status) VALUES (?, NULL, ?)
		ON CONFLICT (namespace_id) DO UPDATE SET last_ran_ms = NULL, status = excluded.status`, namespaceID, AutoPruneQueued)
	if err != nil {
		return fmt.Errorf("queue autoprune task: %w", err)
	}
	return nil
}

// policyScope is the table and owner column of one kind of policy.
type policyScope struct {
	table, owner string // "namespaceautoprunepolicy", "namespace_id"
	repoExpr     string // what to read as RepositoryID
	id           int64  // the namespace or repository
	what         string // for messages
}

func nsScope(namespaceID int64) policyScope {
	return policyScope{"namespaceautoprunepolicy", "namespace_id", "0", namespaceID, fmt.Sprintf("namespace id %d", namespaceID)}
}

func repoScope(repositoryID int64) policyScope {
	return policyScope{"repositoryautoprunepolicy", "repository_id", "repository_id", repositoryID, fmt.Sprintf("repository id %d", repositoryID)}
}

func (db *DB) autoPruneDuplicate(ctx context.Context, tx *sql.Tx, sc policyScope, policy, exceptUUID string) error {
	var n int
	if err := db.queryRow(ctx, tx, `SELECT COUNT(*) FROM `+sc.table+` WHERE `+sc.owner+` = ? AND policy = ? AND uuid <> ?`,
		sc.id, policy, exceptUUID).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return ErrExists
	}
	return nil
}

// createPolicy inserts a policy and queues the namespace's task, in one
// transaction.
func (db *DB) createPolicy(ctx context.Context, sc policyScope, namespaceID int64, policy string) (string, error) {
	id := uuid.NewString()
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		if err := db.autoPruneDuplicate(ctx, tx, sc, policy, ""); err != nil {
			return err
		}
		var err error
		if sc.table == "namespaceautoprunepolicy" {
			_, err = db.exec(ctx, tx, `INSERT INTO namespaceautoprunepolicy (uuid, namespace_id, policy) VALUES (?, ?, ?)`,
				id, namespaceID, policy)
		} else {
			_, err = db.exec(ctx, tx, `INSERT INTO repositoryautoprunepolicy (uuid, repository_id, namespace_id, policy) VALUES (?, ?, ?, ?)`,
				id, sc.id, namespaceID, policy)
		}
		if err != nil {
			return fmt.Errorf("insert policy: %w", err)
		}
		return db.requeueAutoPrune(ctx, tx, namespaceID)
	})
	if err != nil {
		return "", fmt.Errorf("create autoprune policy of %s: %w", sc.what, err)
	}
	return id, nil
}

func (db *DB) policies(ctx context.Context, q queryer, sc policyScope) ([]AutoPrunePolicy, error) {
	rows, err := db.query(ctx, q, `SELECT uuid, namespace_id, `+sc.repoExpr+`, policy
		FROM `+sc.table+` WHERE `+sc.owner+` = ? ORDER BY id`, sc.id)
	if err != nil {
		return nil, fmt.Errorf("list autoprune policies of %s: %w", sc.what, err)
	}
	defer rows.Close()
	var out []AutoPrunePolicy
	for rows.Next() {
		var p AutoPrunePolicy
		if err := rows.Scan(&p.UUID, &p.NamespaceID, &p.RepositoryID, &p.Policy); err != nil {
			return nil, fmt.Errorf("list autoprune policies of %s: %w", sc.what, err)
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

func (db *DB) updatePolicy(ctx context.Context, sc policyScope, namespaceID int64, id, policy string) error {
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := db.queryRow(ctx, tx, `SELECT COUNT(*) FROM `+sc.table+` WHERE `+sc.owner+` = ? AND uuid = ?`,
			sc.id, id).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("autoprune policy %s: %w", id, ErrNotFound)
		}
		if err := db.autoPruneDuplicate(ctx, tx, sc, policy, id); err != nil {
			return err
		}
		if _, err := db.exec(ctx, tx, `UPDATE `+sc.table+` SET policy = ? WHERE `+sc.owner+` = ? AND uuid = ?`, policy, sc.id, id); err != nil {
			return err
		}
		return db.requeueAutoPrune(ctx, tx, namespaceID)
	})
	if err != nil {
		return fmt.Errorf("update autoprune policy of %s: %w", sc.what, err)
	}
	return nil
}

func (db *DB) deletePolicy(ctx context.Context, sc policyScope, id string) error {
	res, err := db.exec(ctx, db.w, `DELETE FROM `+sc.table+` WHERE `+sc.owner+` = ? AND uuid = ?`, sc.id, id)
	if err == nil {
		err = checkAffected(res, "autoprune policy "+id)
	}
	if err != nil {
		return fmt.Errorf("delete autoprune policy of %s: %w", sc.what, err)
	}
	return nil
}

// CreateNamespaceAutoPrunePolicy implements AutoPruneStore.
func (db *DB) CreateNamespaceAutoPrunePolicy(ctx context.Context, namespaceID int64, policy string) (string, error) {
	return db.createPolicy(ctx, nsScope(namespaceID), namespaceID, policy)
}

// NamespaceAutoPrunePolicies implements AutoPruneStore.
func (db *DB) NamespaceAutoPrunePolicies(ctx context.Context, namespaceID int64) ([]AutoPrunePolicy, error) {
	return db.policies(ctx, db.r, nsScope(namespaceID))
}

// UpdateNamespaceAutoPrunePolicy implements AutoPruneStore.
func (db *DB) UpdateNamespaceAutoPrunePolicy(ctx context.Context, namespaceID int64, id, policy string) error {
	return db.updatePolicy(ctx, nsScope(namespaceID), namespaceID, id, policy)
}

// DeleteNamespaceAutoPrunePolicy implements AutoPruneStore.
func (db *DB) DeleteNamespaceAutoPrunePolicy(ctx context.Context, namespaceID int64, id string) error {
	return db.deletePolicy(ctx, nsScope(namespaceID), id)
}

// CreateRepositoryAutoPrunePolicy implements AutoPruneStore.
func (db *DB) CreateRepositoryAutoPrunePolicy(ctx context.Context, namespaceID, repositoryID int64, policy string) (string, error) {
	return db.createPolicy(ctx, repoScope(repositoryID), namespaceID, policy)
}

// RepositoryAutoPrunePolicies implements AutoPruneStore.
func (db *DB) RepositoryAutoPrunePolicies(ctx context.Context, repositoryID int64) ([]AutoPrunePolicy, error) {
	return db.policies(ctx, db.r, repoScope(repositoryID))
}

// UpdateRepositoryAutoPrunePolicy implements AutoPruneStore.
func (db *DB) UpdateRepositoryAutoPrunePolicy(ctx context.Context, namespaceID, repositoryID int64, id, policy string) error {
	return db.updatePolicy(ctx, repoScope(repositoryID), namespaceID, id, policy)
}

// DeleteRepositoryAutoPrunePolicy implements AutoPruneStore.
func (db *DB) DeleteRepositoryAutoPrunePolicy(ctx context.Context, repositoryID int64, id string) error {
	return db.deletePolicy(ctx, repoScope(repositoryID), id)
}

// repositoryPolicies lists the policies of a namespace's repositories in
// the NORMAL state, with the repositories' names.
func (db *DB) repositoryPolicies(ctx context.Context, q queryer, namespaceID int64) ([]AutoPrunePolicy, error) {
	rows, err := db.query(ctx, q, `SELECT p.uuid, p.namespace_id, p.repository_id, r.name, p.policy
		FROM repositoryautoprunepolicy p JOIN repository r ON r.id = p.repository_id
		WHERE p.namespace_id = ? AND r.state = ? ORDER BY p.repository_id, p.id`, namespaceID, RepoStateNormal)
	if err != nil {
		return nil, fmt.Errorf("list repository autoprune policies of namespace id %d: %w", namespaceID, err)
	}
	defer rows.Close()
	var out []AutoPrunePolicy
	for rows.Next() {
		var p AutoPrunePolicy
		if err := rows.Scan(&p.UUID, &p.NamespaceID, &p.RepositoryID, &p.Repository, &p.Policy); err != nil {
			return nil, fmt.Errorf("list repository autoprune policies of namespace id %d: %w", namespaceID, err)
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// ClaimAutoPruneTask implements AutoPruneStore.
func (db *DB) ClaimAutoPruneTask(ctx context.Context, minInterval time.Duration) (*AutoPruneTask, error) {
	lock := ""
	if db.d.pg {
		lock = ` FOR UPDATE OF t SKIP LOCKED`
	}
	var task *AutoPruneTask
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		// A few tasks without policies may be deleted before one is found;
		// the bound keeps one call short.
		for range 100 {
			nowMs := db.nowMs()
			var t AutoPruneTask
			err := db.queryRow(ctx, tx, `SELECT t.id, t.namespace_id, u.username FROM autoprunetaskstatus t
				JOIN "user" u ON u.id = t.namespace_id
				WHERE u.enabled = true AND (t.last_ran_ms IS NULL OR t.last_ran_ms < ?)
				ORDER BY t.last_ran_ms ASC NULLS FIRST, t.id LIMIT 1`+lock,
				nowMs-minInterval.Milliseconds()).Scan(&t.ID, &t.NamespaceID, &t.Namespace)
			if errors.Is(err, sql.ErrNoRows) {
				return nil
			}
			if err != nil {
				return fmt.Errorf("select task: %w", err)
			}
			if t.Policies, err = db.policies(ctx, tx, nsScope(t.NamespaceID)); err != nil {
				return err
			}
			if t.RepositoryPolicies, err = db.repositoryPolicies(ctx, tx, t.NamespaceID); err != nil {
				return err
			}
			if len(t.Policies) == 0 && len(t.RepositoryPolicies) == 0 {
				if _, err := db.exec(ctx, tx, `DELETE FROM autoprunetaskstatus WHERE id = ?`, t.ID); err != nil {
					return fmt.Errorf("delete task without policies: %w", err)
				}
				continue
			}
			if _, err := db.exec(ctx, tx, `UPDATE autoprunetaskstatus SET last_ran_ms = ?, status = ? WHERE id = ?`,
				nowMs, AutoPruneRunning, t.ID); err != nil {
				return fmt.Errorf("mark task running: %w", err)
			}
			task = &t
			return nil
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("claim autoprune task: %w", err)
	}
	return task, nil
}

// FinishAutoPruneTask implements AutoPruneStore.
func (db *DB) FinishAutoPruneTask(ctx context.Context, taskID int64, status string) error {
	if _, err := db.exec(ctx, db.w, `UPDATE autoprunetaskstatus SET status = ? WHERE id = ?`, status, taskID); err != nil {
		return fmt.Errorf("record autoprune task %d status: %w", taskID, err)
	}
	return nil
}

// AutoPruneTaskStatus implements AutoPruneStore.
func (db *DB) AutoPruneTaskStatus(ctx context.Context, namespaceID int64) (string, *int64, error) {
	var (
		status sql.NullString
		last   sql.NullInt64
	)
	err := db.queryRow(ctx, db.r, `SELECT status, last_ran_ms FROM autoprunetaskstatus WHERE namespace_id = ?`, namespaceID).Scan(&status, &last)
	if err != nil {
		return "", nil, notFound(err, fmt.Sprintf("autoprune task of namespace id %d", namespaceID))
	}
	if !last.Valid {
		return status.String, nil, nil
	}
	return status.String, &last.Int64, nil
}

// NamespaceRepositories implements AutoPruneStore.
func (db *DB) NamespaceRepositories(ctx context.Context, namespaceID, afterID int64, limit int) ([]Repository, error) {
	if limit <= 0 {
		limit = 100
	}
	return queryAll(ctx, db, fmt.Sprintf("list repositories of namespace id %d", namespaceID),
		repoSelect+` WHERE r.namespace_user_id = ? AND r.id > ? AND r.state = ? ORDER BY r.id LIMIT ?`,
		[]any{namespaceID, afterID, RepoStateNormal, limit}, func(rows *sql.Rows) (Repository, error) {
			r, err := scanRepo(rows)
			if err != nil {
				return Repository{}, err
			}
			return *r, nil
		})
}

// PrunableTags implements AutoPruneStore.
func (db *DB) PrunableTags(ctx context.Context, repositoryID int64) ([]Tag, error) {
	return queryAll(ctx, db, fmt.Sprintf("list prunable tags of repository id %d", repositoryID),
		`SELECT `+tagColumns+` FROM tag t JOIN manifest m ON m.id = t.manifest_id
		WHERE t.repository_id = ? AND t.hidden = false AND t.immutable = false
		AND (t.lifetime_end_ms IS NULL OR t.lifetime_end_ms > ?)
		ORDER BY t.lifetime_start_ms DESC, t.id DESC`, []any{repositoryID, db.nowMs()},
		func(rows *sql.Rows) (Tag, error) {
			t, err := scanTag(rows)
			if err != nil {
				return Tag{}, err
			}
			return *t, nil
		})
}

// PruneTag implements AutoPruneStore.
func (db *DB) PruneTag(ctx context.Context, t *Tag, e LogEntry) (bool, error) {
	kindID, err := db.logKindID(ctx, e.Kind)
	if err != nil {
		return false, err
	}
	meta, err := json.Marshal(e.Metadata)
	if err != nil {
		return false, fmt.Errorf("audit metadata: %w", err)
	}
	pruned := false
	err = db.inTx(ctx, func(tx *sql.Tx) error {
		if err := db.advisoryLock(ctx, tx, retargetLockName(t.RepositoryID)); err != nil {
			return err
		}
		nowMs := db.nowMs()
		cur, err := scanTag(db.queryRow(ctx, tx, `SELECT `+tagColumns+` FROM tag t JOIN manifest m ON m.id = t.manifest_id
			WHERE t.id = ? AND t.hidden = false AND t.immutable = false AND (t.lifetime_end_ms IS NULL OR t.lifetime_end_ms > ?)`,
			t.ID, nowMs))
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := db.endTag(ctx, tx, cur, nowMs); err != nil {
			return err
		}
		at := e.Time
		if at.IsZero() {
			at = db.now()
		}
		if _, err := db.exec(ctx, tx, `INSERT INTO logentry3 (kind_id, account_id, performer_id, repository_id, datetime, ip, metadata_json)
			VALUES (?, ?, ?, ?, ?, ?, ?)`, kindID, e.AccountID, nullInt(e.PerformerID), nullInt(e.RepositoryID),
			db.d.ts(at), nullString(e.IP), string(meta)); err != nil {
			return fmt.Errorf("audit %s: %w", e.Kind, err)
		}
		pruned = true
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("prune tag %q of repository id %d: %w", t.Name, t.RepositoryID, err)
	}
	return pruned, nil
}

// ActiveNamespaces implements AutoPruneStore.
func (db *DB) ActiveNamespaces(ctx context.Context, afterID int64, limit int) ([]User, error) {
	if limit <= 0 {
		limit = 50
	}
	return queryAll(ctx, db, "list active namespaces", `SELECT `+userColumns+` FROM "user"
		WHERE robot = false AND enabled = true AND id > ? ORDER BY id LIMIT ?`, []any{afterID, limit},
		func(rows *sql.Rows) (User, error) {
			u, err := scanUser(rows)
			if err != nil {
				return User{}, err
			}
			return *u, nil
		})
}

// registryAutoPruneQueue names the one queueitem row that serialises the
// registry-wide auto-prune pass across replicas and remembers when it is
// due next (Quay holds a Redis lock for this; the row needs no Redis, and
// Quay's workers ignore queue names they do not know).
const registryAutoPruneQueue = "quayctl_registry_autoprune/"

// ClaimRegistryAutoPrune implements AutoPruneStore.
func (db *DB) ClaimRegistryAutoPrune(ctx context.Context, timeout time.Duration) (string, error) {
	now := db.now()
	claim := uuid.NewString()
	taken := false
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		// Creating the row is serialised (SQLite serialises writers anyway).
		if err := db.advisoryLock(ctx, tx, registryAutoPruneQueue); err != nil {
			return err
		}
		var id int64
		var state string
		err := db.queryRow(ctx, tx, `SELECT id, state_id FROM queueitem WHERE queue_name = ?`, registryAutoPruneQueue).Scan(&id, &state)
		if errors.Is(err, sql.ErrNoRows) {
			_, err = db.exec(ctx, tx, `INSERT INTO queueitem (queue_name, body, available_after, available, processing_expires, retries_remaining, state_id)
				VALUES (?, '{}', ?, false, ?, 1, ?)`, registryAutoPruneQueue, db.d.ts(now), db.d.ts(now.Add(timeout)), claim)
			taken = err == nil
			return err
		}
		if err != nil {
			return err
		}
		nowTS := db.d.ts(now)
		res, err := db.exec(ctx, tx, `UPDATE queueitem SET available = false, processing_expires = ?, state_id = ?
			WHERE id = ? AND state_id = ? AND available_after <= ? AND (available = true OR processing_expires <= ?)`,
			db.d.ts(now.Add(timeout)), claim, id, state, nowTS, nowTS)
		if err != nil {
			return err
		}
		n, _ := res.RowsAffected()
		taken = n == 1
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("claim the registry-wide auto-prune pass: %w", err)
	}
	if !taken {
		return "", nil
	}
	return claim, nil
}

// FinishRegistryAutoPrune implements AutoPruneStore.
func (db *DB) FinishRegistryAutoPrune(ctx context.Context, claim string, period time.Duration) error {
	res, err := db.exec(ctx, db.w, `UPDATE queueitem SET available = true, available_after = ?, processing_expires = NULL, state_id = ?
		WHERE queue_name = ? AND state_id = ?`, db.d.ts(db.now().Add(period)), uuid.NewString(), registryAutoPruneQueue, claim)
	if err != nil {
		return fmt.Errorf("finish the registry-wide auto-prune pass: %w", err)
	}
	return checkAffected(res, "finish the registry-wide auto-prune pass")
}
