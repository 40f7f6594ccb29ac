package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/google/uuid"
)

// CreateOAuthToken stores an access token, with its OAuth application, in
// one transaction. Like Quay, the application's client_id is the username.
func (db *DB) CreateOAuthToken(ctx context.Context, t NewOAuthToken) error {
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		var username string
		if err := db.queryRow(ctx, tx, `SELECT username FROM "user" WHERE id = ?`, t.UserID).Scan(&username); err != nil {
			return notFound(err, "user")
		}
		var appID int64
		err := db.queryRow(ctx, tx, `SELECT id FROM oauthapplication WHERE organization_id = ? AND name = ?`, t.UserID, t.ApplicationName).Scan(&appID)
		if errors.Is(err, sql.ErrNoRows) {
			err = db.queryRow(ctx, tx, `INSERT INTO oauthapplication (client_id, redirect_uri, application_uri, organization_id, name, description, fully_migrated)
				VALUES (?, '', '', ?, ?, '', ?) RETURNING id`, username, t.UserID, t.ApplicationName, true).Scan(&appID)
		}
		if err != nil {
			return fmt.Errorf("oauth application: %w", err)
		}
		now := db.d.ts(db.now())
		_, err = db.exec(ctx, tx, `INSERT INTO oauthaccesstoken (uuid, application_id, authorized_user_id, scope, token_type, expires_at, data,
			token_code, token_name, created) VALUES (?, ?, ?, ?, 'Bearer', ?, '', ?, ?, ?)`,
			uuid.NewString(), appID, t.UserID, t.Scope, db.d.ts(t.ExpiresAt), t.TokenCodeHash, t.TokenName, now)
		return err
	})
	if err != nil {
		if isUniqueViolation(err) {
			err = ErrExists // token_name is unique
		}
		return fmt.Errorf("create access token: %w", err)
	}
	return nil
}

// OAuthToken returns an unexpired token by name.
func (db *DB) OAuthToken(ctx context.Context, tokenName string) (*OAuthToken, error) {
	var t OAuthToken
	var exp nullTime
	err := db.queryRow(ctx, db.r, `SELECT authorized_user_id, scope, token_code, expires_at FROM oauthaccesstoken
		WHERE token_name = ? AND expires_at > ?`, tokenName, db.d.ts(db.now())).Scan(&t.UserID, &t.Scope, &t.TokenCodeHash, &exp)
	if err != nil {
		return nil, notFound(err, "access token")
	}
	t.ExpiresAt = exp.Time
	return &t, nil
}
