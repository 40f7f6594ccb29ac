package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
)

// NotificationFailureLimit is Quay's threshold: a repository notification
// that failed this many times in a row is no longer delivered until its
// failures are reset (get_enabled_notification: number_of_failures < 3).
const NotificationFailureLimit = 3

// NotificationQueue is the queueitem name prefix of notification
// deliveries (Quay's NOTIFICATION_QUEUE_NAME "notification").
const NotificationQueue = "notification"

// RepoNotification is a repositorynotification row with its event, method
// and repository names resolved.
type RepoNotification struct {
	ID               int64
	UUID             string
	RepositoryID     int64
	NamespaceID      int64
	Namespace        string
	Repository       string
	Event            string // externalnotificationevent name
	Method           string // externalnotificationmethod name
	Title            string // "" when NULL
	ConfigJSON       string // config_json (the method's settings)
	EventConfigJSON  string // event_config_json
	NumberOfFailures int
	LastRanMs        *int64
}

// NewRepoNotification is what CreateRepoNotification writes.
type NewRepoNotification struct {
	RepositoryID    int64
	Event, Method   string
	Title           string // "" stores NULL
	ConfigJSON      string // "" stores "{}"
	EventConfigJSON string // "" stores "{}"
}

// NotificationQueueItem is a claimed queueitem of the notification queue.
type NotificationQueueItem struct {
	ID               int64
	QueueName        string
	Body             string
	StateID          string
	RetriesRemaining int // after this claim
}

// UserNotification is a `notification` row (an in-app notification) with
// its kind and target resolved.
type UserNotification struct {
	ID           int64
	UUID         string
	Kind         string
	TargetID     int64
	TargetName   string
	TargetIsOrg  bool
	MetadataJSON string
	Created      time.Time
	Dismissed    bool
}

// NotificationStore is the notifications part of the store: Quay's
// repositorynotification rows, their deliveries in queueitem (claimed with
// a compare-and-set on state_id, and FOR UPDATE SKIP LOCKED on PostgreSQL,
// so several workers deliver each item once), and the in-app
// `notification` rows.
type NotificationStore interface {
	// CreateRepoNotification adds a notification to a repository;
	// InvalidInputError when the event or method name is unknown.
	CreateRepoNotification(ctx context.Context, n NewRepoNotification) (*RepoNotification, error)
	// RepoNotifications lists a repository's notifications (event "" for
	// all), oldest first.
	RepoNotifications(ctx context.Context, repositoryID int64, event string) ([]RepoNotification, error)
	// RepoNotificationByUUID finds one notification (ErrNotFound).
	RepoNotificationByUUID(ctx context.Context, uuid string) (*RepoNotification, error)
	// DeleteRepoNotification removes a notification (ErrNotFound).
	DeleteRepoNotification(ctx context.Context, uuid string) error
	// RecordNotificationResult resets number_of_failures to 0 after a
	// delivery (as Quay does) or adds one after a failed delivery, and
	// stamps last_ran_ms. It returns the new number of failures.
	RecordNotificationResult(ctx context.Context, uuid string, ok bool) (int, error)
	// ResetRepoNotificationFailures sets number_of_failures to 0 (ErrNotFound).
	ResetRepoNotificationFailures(ctx context.Context, uuid string) error

	// EnqueueNotifications adds one queue item per body under queueName
	// (which must start with NotificationQueue+"/"), each with retries
	// tries, in one transaction.
	EnqueueNotifications(ctx context.Context, queueName string, bodies []string, retries int) error
	// ClaimNotification takes the oldest available delivery for lease;
	// nil when there is none.
	ClaimNotification(ctx context.Context, lease time.Duration) (*NotificationQueueItem, error)
	// CompleteNotification deletes a claimed item; false when the claim
	// was lost (the lease expired and another worker took it).
	CompleteNotification(ctx context.Context, it *NotificationQueueItem) (bool, error)
	// RetryNotification gives a claimed item back, available at after.
	RetryNotification(ctx context.Context, it *NotificationQueueItem, after time.Time) error
	// PendingNotifications counts the queue's items that still have tries
	// left (for status and tests).
	PendingNotifications(ctx context.Context) (int, error)

	// CreateUserNotification adds an in-app notification of kind (a
	// notificationkind name) for the target user or organisation.
	CreateUserNotification(ctx context.Context, kind string, targetID int64, metadataJSON string) error
	// UserNotifications lists what userID sees, newest first: its own and
	// those of organisations it administers (through an admin team);
	// dismissed ones only when includeDismissed. uuid "" for all.
	UserNotifications(ctx context.Context, userID int64, uuid string, includeDismissed bool) ([]UserNotification, error)
	// SetNotificationDismissed dismisses or restores one (ErrNotFound).
	SetNotificationDismissed(ctx context.Context, id int64, dismissed bool) error
}

var _ NotificationStore = (*DB)(nil)

const repoNotificationColumns = `n.id, n.uuid, n.repository_id, r.namespace_user_id, ns.username, r.name, e.name, m.name,
	COALESCE(n.title, ''), n.config_json, n.event_config_json, n.number_of_failures, n.last_ran_ms`

const repoNotificationFrom = ` FROM repositorynotification n
	JOIN repository r ON r.id = n.repository_id
	JOIN "user" ns ON ns.id = r.namespace_user_id
	JOIN externalnotificationevent e ON e.id = n.event_id
	JOIN externalnotificationmethod m ON m.id = n.method_id`

func scanRepoNotification(row interface{ Scan(...any) error }) (*RepoNotification, error) {
	var n RepoNotification
	var last sql.NullInt64
	if err := row.Scan(&n.ID, &n.UUID, &n.RepositoryID, &n.NamespaceID, &n.Namespace, &n.Repository, &n.Event, &n.Method,
		&n.Title, &n.ConfigJSON, &n.EventConfigJSON, &n.NumberOfFailures, &last); err != nil {
		return nil, err
	}
	if last.Valid {
		v := last.Int64
		n.LastRanMs = &v
	}
	return &n, nil
}

// CreateRepoNotification implements NotificationStore.
func (db *DB) CreateRepoNotification(ctx context.Context, in NewRepoNotification) (*RepoNotification, error) {
	if in.ConfigJSON == "" {
		in.ConfigJSON = "{}"
	}
	if in.EventConfigJSON == "" {
		in.EventConfigJSON = "{}"
	}
	id := uuid.NewString()
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		var eventID, methodID int64
		err := db.queryRow(ctx, tx, `SELECT id FROM externalnotificationevent WHERE name = ?`, in.Event).Scan(&eventID)
		if errors.Is(err, sql.ErrNoRows) {
			return InvalidInputError{Field: "event", Value: in.Event, Reason: "no such notification event"}
		} else if err != nil {
			return err
		}
		err = db.queryRow(ctx, tx, `SELECT id FROM externalnotificationmethod WHERE name = ?`, in.Method).Scan(&methodID)
		if errors.Is(err, sql.ErrNoRows) {
			return InvalidInputError{Field: "method", Value: in.Method, Reason: "no such notification method"}
		} else if err != nil {
			return err
		}
		_, err = db.exec(ctx, tx, `INSERT INTO repositorynotification (uuid, repository_id, event_id, method_id, title,
			config_json, event_config_json, number_of_failures) VALUES (?, ?, ?, ?, ?, ?, ?, 0)`,
			id, in.RepositoryID, eventID, methodID, nullString(in.Title), in.ConfigJSON, in.EventConfigJSON)
		return err
	})
	if err != nil {
		var inv InvalidInputError
		if errors.As(err, &inv) {
			return nil, err
		}
		return nil, fmt.Errorf("create repository notification: %w", err)
	}
	return db.RepoNotificationByUUID(ctx, id)
}

// RepoNotifications implements NotificationStore.
func (db *DB) RepoNotifications(ctx context.Context, repositoryID int64, event string) ([]RepoNotification, error) {
	q := `SELECT ` + repoNotificationColumns + repoNotificationFrom + ` WHERE n.repository_id = ?`
	args := []any{repositoryID}
	if event != "" {
		q += ` AND e.name = ?`
		args = append(args, event)
	}
	rows, err := db.query(ctx, db.r, q+` ORDER BY n.id`, args...)
	if err != nil {
		return nil, fmt.Errorf("list repository notifications: %w", err)
	}
	defer rows.Close()
	var out []RepoNotification
	for rows.Next() {
		n, err := scanRepoNotification(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, *n)
	}
	return out, rows.Err()
}

// RepoNotificationByUUID implements NotificationStore.
func (db *DB) RepoNotificationByUUID(ctx context.Context, id string) (*RepoNotification, error) {
	n, err := scanRepoNotification(db.queryRow(ctx, db.r, `SELECT `+repoNotificationColumns+repoNotificationFrom+` WHERE n.uuid = ?`, id))
	if err != nil {
		return nil, notFound(err, "repository notification "+id)
	}
	return n, nil
}

// DeleteRepoNotification implements NotificationStore.
func (db *DB) DeleteRepoNotification(ctx context.Context, id string) error {
	res, err := db.exec(ctx, db.w, `DELETE FROM repositorynotification WHERE uuid = ?`, id)
	if err != nil {
		return fmt.Errorf("delete repository notification %s: %w", id, err)
	}
	return checkAffected(res, "repository notification "+id)
}

// RecordNotificationResult implements NotificationStore.
func (db *DB) RecordNotificationResult(ctx context.Context, id string, ok bool) (int, error) {
	set := `number_of_failures = number_of_failures + 1`
	if ok {
		set = `number_of_failures = 0`
	}
	var n int
	err := db.queryRow(ctx, db.w, `UPDATE repositorynotification SET `+set+`, last_ran_ms = ? WHERE uuid = ?
		RETURNING number_of_failures`, db.nowMs(), id).Scan(&n)
	if err != nil {
		return 0, notFound(err, "repository notification "+id)
	}
	return n, nil
}

// ResetRepoNotificationFailures implements NotificationStore.
func (db *DB) ResetRepoNotificationFailures(ctx context.Context, id string) error {
	res, err := db.exec(ctx, db.w, `UPDATE repositorynotification SET number_of_failures = 0 WHERE uuid = ?`, id)
	if err != nil {
		return fmt.Errorf("reset repository notification %s: %w", id, err)
	}
	return checkAffected(res, "repository notification "+id)
}

// EnqueueNotifications implements NotificationStore.
func (db *DB) EnqueueNotifications(ctx context.Context, queueName string, bodies []string, retries int) error {
	if !strings.HasPrefix(queueName, NotificationQueue+"/") {
		return fmt.Errorf("queue name %q is not in the %s queue", queueName, NotificationQueue)
	}
	if len(bodies) == 0 {
		return nil
	}
	now := db.d.ts(db.now())
	return db.inTx(ctx, func(tx *sql.Tx) error {
		for _, b := range bodies {
			if _, err := db.exec(ctx, tx, `INSERT INTO queueitem (queue_name, body, available_after, available,
				processing_expires, retries_remaining, state_id) VALUES (?, ?, ?, true, NULL, ?, ?)`,
				queueName, b, now, retries, uuid.NewString()); err != nil {
				return fmt.Errorf("queue notification: %w", err)
			}
		}
		return nil
	})
}

// ClaimNotification implements NotificationStore. Like Quay's WorkQueue, a
// claim uses up one try, and an item whose lease expired (its worker died)
// is available again.
func (db *DB) ClaimNotification(ctx context.Context, lease time.Duration) (*NotificationQueueItem, error) {
	now := db.now()
	nowTS := db.d.ts(now)
	query := `SELECT id, queue_name, body, state_id, retries_remaining FROM queueitem
		WHERE queue_name LIKE ? AND available_after <= ?
		AND (available = true OR processing_expires <= ?) AND retries_remaining > 0
		ORDER BY id LIMIT 1`
	if db.d.pg {
		query += ` FOR UPDATE SKIP LOCKED`
	}
	var item *NotificationQueueItem
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		var c NotificationQueueItem
		err := db.queryRow(ctx, tx, query, NotificationQueue+"/%", nowTS, nowTS).Scan(&c.ID, &c.QueueName, &c.Body, &c.StateID, &c.RetriesRemaining)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		newState := uuid.NewString()
		res, err := db.exec(ctx, tx, `UPDATE queueitem SET available = false, processing_expires = ?,
			retries_remaining = retries_remaining - 1, state_id = ? WHERE id = ? AND state_id = ?`,
			db.d.ts(now.Add(lease)), newState, c.ID, c.StateID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 1 {
			c.StateID = newState
			c.RetriesRemaining--
			item = &c
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("claim notification queue item: %w", err)
	}
	return item, nil
}

// CompleteNotification implements NotificationStore.
func (db *DB) CompleteNotification(ctx context.Context, it *NotificationQueueItem) (bool, error) {
	res, err := db.exec(ctx, db.w, `DELETE FROM queueitem WHERE id = ? AND state_id = ?`, it.ID, it.StateID)
	if err != nil {
		return false, fmt.Errorf("delete notification queue item %d: %w", it.ID, err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// RetryNotification implements NotificationStore.
func (db *DB) RetryNotification(ctx context.Context, it *NotificationQueueItem, after time.Time) error {
	_, err := db.exec(ctx, db.w, `UPDATE queueitem SET available = true, processing_expires = NULL,
		available_after = ?, state_id = ? WHERE id = ? AND state_id = ?`,
		db.d.ts(after), uuid.NewString(), it.ID, it.StateID)
	if err != nil {
		return fmt.Errorf("release notification queue item %d: %w", it.ID, err)
	}
	return nil
}

// PendingNotifications implements NotificationStore.
func (db *DB) PendingNotifications(ctx context.Context) (int, error) {
	var n int
	err := db.queryRow(ctx, db.r, `SELECT COUNT(*) FROM queueitem WHERE queue_name LIKE ? AND retries_remaining > 0`,
		NotificationQueue+"/%").Scan(&n)
	return n, err
}

// CreateUserNotification implements NotificationStore.
func (db *DB) CreateUserNotification(ctx context.Context, kind string, targetID int64, metadataJSON string) error {
	if metadataJSON == "" {
		metadataJSON = "{}"
	}
	res, err := db.exec(ctx, db.w, `INSERT INTO notification (uuid, kind_id, target_id, metadata_json, created, dismissed)
		SELECT ?, k.id, ?, ?, ?, false FROM notificationkind k WHERE k.name = ?`,
		uuid.NewString(), targetID, metadataJSON, db.d.ts(db.now()), kind)
	if err != nil {
		return fmt.Errorf("create notification for user id %d: %w", targetID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return InvalidInputError{Field: "notification kind", Value: kind, Reason: "no such notificationkind row"}
	}
	return nil
}

// UserNotifications implements NotificationStore: Quay's
// list_notifications (direct, or through an admin team of the target
// organisation).
func (db *DB) UserNotifications(ctx context.Context, userID int64, id string, includeDismissed bool) ([]UserNotification, error) {
	q := `SELECT n.id, n.uuid, k.name, n.target_id, t.username, t.organization, n.metadata_json, n.created, n.dismissed
		FROM notification n
		JOIN notificationkind k ON k.id = n.kind_id
		JOIN "user" t ON t.id = n.target_id
		WHERE (n.target_id = ? OR n.target_id IN (
			SELECT tm.organization_id FROM team tm
			JOIN teamrole tr ON tr.id = tm.role_id AND tr.name = 'admin'
			JOIN teammember m ON m.team_id = tm.id
			WHERE m.user_id = ?))`
	args := []any{userID, userID}
	if id != "" {
		q += ` AND n.uuid = ?`
		args = append(args, id)
	}
	if !includeDismissed {
		q += ` AND n.dismissed = false`
	}
	rows, err := db.query(ctx, db.r, q+` ORDER BY n.created DESC, n.id DESC`, args...)
	if err != nil {
		return nil, fmt.Errorf("list notifications of user id %d: %w", userID, err)
	}
	defer rows.Close()
	var out []UserNotification
	for rows.Next() {
		var n UserNotification
		var created nullTime
		if err := rows.Scan(&n.ID, &n.UUID, &n.Kind, &n.TargetID, &n.TargetName, &n.TargetIsOrg, &n.MetadataJSON, &created, &n.Dismissed); err != nil {
			return nil, err
		}
		n.Created = created.Time
		out = append(out, n)
	}
	return out, rows.Err()
}

// SetNotificationDismissed implements NotificationStore.
func (db *DB) SetNotificationDismissed(ctx context.Context, id int64, dismissed bool) error {
	res, err := db.exec(ctx, db.w, `UPDATE notification SET dismissed = ? WHERE id = ?`, dismissed, id)
	if err != nil {
		return fmt.Errorf("dismiss notification %d: %w", id, err)
	}
	return checkAffected(res, fmt.Sprintf("notification %d", id))
}
