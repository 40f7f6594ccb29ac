package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"

	"github.com/google/uuid"
)

const defaultRemovedTagExpirationS = 1209600 // two weeks, Quay's default

const userColumns = `id, uuid, username, email, password_hash, verified, organization, robot, enabled,
	invalid_login_attempts, removed_tag_expiration_s, creation_date`

func scanUser(row interface{ Scan(...any) error }) (*User, error) {
	var (
		u       User
		uid, pw sql.NullString
		created nullTime
	)
	if err := row.Scan(&u.ID, &uid, &u.Username, &u.Email, &pw, &u.Verified, &u.Organization, &u.Robot,
		&u.Enabled, &u.InvalidLoginAttempts, &u.RemovedTagExpirationS, &created); err != nil {
		return nil, err
	}
	u.UUID, u.PasswordHash, u.CreationDate = uid.String, pw.String, created.Time
	return &u, nil
}

// CountUsers counts every row of "user": people, organisations and robots.
func (db *DB) CountUsers(ctx context.Context) (int64, error) {
	var n int64
	if err := db.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM "user"`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count users: %w", err)
	}
	return n, nil
}

// CreateUser inserts a user row with Quay's defaults.
func (db *DB) CreateUser(ctx context.Context, nu NewUser) (*User, error) {
	if !nu.Superuser {
		return db.createUser(ctx, db.w, nu)
	}
	var u *User
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		if u, err = db.createUser(ctx, tx, nu); err != nil {
			return err
		}
		_, err = db.exec(ctx, tx, `INSERT INTO quayctl_superuser (user_id, created) VALUES (?, ?)`, u.ID, db.d.ts(db.now()))
		return err
	})
	if err != nil {
		return nil, err
	}
	return u, nil
}

// CreateInitialUser creates the first user of an empty registry as a
// superuser, atomically: the emptiness check, the user row and the
// superuser row commit together, so two concurrent initialize calls cannot
// both succeed and a failure leaves nothing behind.
func (db *DB) CreateInitialUser(ctx context.Context, nu NewUser) (*User, error) {
	var u *User
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		if err := db.advisoryLock(ctx, tx, "user_initialize"); err != nil {
			return err
		}
		var n int64
		if err := db.queryRow(ctx, tx, `SELECT COUNT(*) FROM "user"`).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return ErrNotEmpty
		}
		var err error
		if u, err = db.createUser(ctx, tx, nu); err != nil {
			return err
		}
		_, err = db.exec(ctx, tx, `INSERT INTO quayctl_superuser (user_id, created) VALUES (?, ?)`, u.ID, db.d.ts(db.now()))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("create initial user %q: %w", nu.Username, err)
	}
	return u, nil
}

func (db *DB) createUser(ctx context.Context, q queryer, nu NewUser) (*User, error) {
	now := db.now()
	email := nu.Email
	if email == "" {
		email = randomString(64)
	}
	exp := nu.RemovedTagExpirationS
	if exp == 0 {
		exp = db.defaultTagExpiration()
	}
	row := db.queryRow(ctx, q, `INSERT INTO "user" (uuid, username, password_hash, email, verified,
		organization, robot, invoice_email, invalid_login_attempts, last_invalid_login,
		removed_tag_expiration_s, enabled, creation_date)
		VALUES (?, ?, ?, ?, ?, ?, ?, false, 0, ?, ?, true, ?)
		RETURNING `+userColumns,
		uuid.NewString(), nu.Username, nullString(nu.PasswordHash), email, nu.Verified,
		nu.Organization, nu.Robot, db.d.ts(now), exp, db.d.ts(now))
	u, err := scanUser(row)
	if err != nil {
		if isUniqueViolation(err) {
			if _, e := db.UserByName(ctx, nu.Username); e == nil {
				return nil, fmt.Errorf("create user %q: username %w", nu.Username, ErrExists)
			}
			return nil, fmt.Errorf("create user %q: email %w", nu.Username, ErrExists)
		}
		return nil, fmt.Errorf("create user %q: %w", nu.Username, err)
	}
	return u, nil
}

func (db *DB) userBy(ctx context.Context, where, what string, arg any) (*User, error) {
	u, err := scanUser(db.queryRow(ctx, db.r, `SELECT `+userColumns+` FROM "user" WHERE `+where, arg))
	if err != nil {
		return nil, notFound(err, what)
	}
	return u, nil
}

// UserByName finds a user, organisation or robot by its name.
func (db *DB) UserByName(ctx context.Context, username string) (*User, error) {
	return db.userBy(ctx, "username = ?", fmt.Sprintf("user %q", username), username)
}

// UserByEmail finds a non-organisation user by e-mail.
func (db *DB) UserByEmail(ctx context.Context, email string) (*User, error) {
	return db.userBy(ctx, "email = ? AND organization = false ORDER BY id LIMIT 1", "user with email "+email, email)
}

// UserByID finds a user row by id.
func (db *DB) UserByID(ctx context.Context, id int64) (*User, error) {
	return db.userBy(ctx, "id = ?", fmt.Sprintf("user id %d", id), id)
}

// SetPasswordHash replaces a user's password hash ("" stores NULL).
func (db *DB) SetPasswordHash(ctx context.Context, userID int64, hash string) error {
	res, err := db.exec(ctx, db.w, `UPDATE "user" SET password_hash = ? WHERE id = ?`, nullString(hash), userID)
	if err != nil {
		return fmt.Errorf("set password of user id %d: %w", userID, err)
	}
	return checkAffected(res, fmt.Sprintf("set password of user id %d", userID))
}

// RecordLoginAttempt resets or increments invalid_login_attempts.
func (db *DB) RecordLoginAttempt(ctx context.Context, userID int64, success bool) error {
	var (
		res sql.Result
		err error
	)
	if success {
		res, err = db.exec(ctx, db.w, `UPDATE "user" SET invalid_login_attempts = 0 WHERE id = ?`, userID)
	} else {
		res, err = db.exec(ctx, db.w, `UPDATE "user" SET invalid_login_attempts = invalid_login_attempts + 1,
			last_invalid_login = ? WHERE id = ?`, db.d.ts(db.now()), userID)
	}
	if err != nil {
		return fmt.Errorf("record login attempt of user id %d: %w", userID, err)
	}
	return checkAffected(res, fmt.Sprintf("record login attempt of user id %d", userID))
}

// AddSuperuser records userID as a superuser; doing it twice is harmless.
func (db *DB) AddSuperuser(ctx context.Context, userID int64) error {
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		var id int64
		if err := db.queryRow(ctx, tx, `SELECT id FROM "user" WHERE id = ?`, userID).Scan(&id); err != nil {
			return notFound(err, "user")
		}
		_, err := db.exec(ctx, tx, `INSERT INTO quayctl_superuser (user_id, created) VALUES (?, ?)
			ON CONFLICT (user_id) DO NOTHING`, userID, db.d.ts(db.now()))
		return err
	})
	if err != nil {
		return fmt.Errorf("add superuser id %d: %w", userID, err)
	}
	return nil
}

// Superusers lists the usernames recorded as superusers, sorted.
func (db *DB) Superusers(ctx context.Context) ([]string, error) {
	return queryAll(ctx, db, "list superusers", `SELECT u.username FROM quayctl_superuser s
		JOIN "user" u ON u.id = s.user_id ORDER BY u.username`, nil, scanString)
}

// randomString is n characters of [a-z0-9]; Quay fills an empty e-mail with
// such a placeholder so the NOT NULL and unique constraints hold.
func randomString(n int) string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, n)
	// Rejection sampling keeps the distribution uniform.
	buf := make([]byte, 1)
	for i := 0; i < n; {
		if _, err := rand.Read(buf); err != nil {
			panic(errors.New("crypto/rand failed: " + err.Error()))
		}
		if v := int(buf[0]); v < 252 { // 252 = 7*36
			b[i] = alphabet[v%len(alphabet)]
			i++
		}
	}
	return string(b)
}
