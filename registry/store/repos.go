package store

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/google/uuid"
)

// repoSelect reads a Repository; callers add WHERE conditions.
const repoSelect = `SELECT r.id, r.namespace_user_id, u.username, r.name, v.name = 'public', r.description, r.state
	FROM repository r
	JOIN "user" u ON u.id = r.namespace_user_id
	JOIN visibility v ON v.id = r.visibility_id`

func scanRepo(row interface{ Scan(...any) error }) (*Repository, error) {
	var (
		r    Repository
		desc sql.NullString
	)
	if err := row.Scan(&r.ID, &r.NamespaceID, &r.Namespace, &r.Name, &r.Public, &desc, &r.State); err != nil {
		return nil, err
	}
	r.Description = desc.String
	return &r, nil
}

// Repository finds a repository by namespace and name. Repositories marked
// for deletion are not found (Quay renames them as well).
func (db *DB) Repository(ctx context.Context, namespace, name string) (*Repository, error) {
	r, err := scanRepo(db.queryRow(ctx, db.r, repoSelect+` WHERE u.username = ? AND r.name = ? AND r.state <> ?`,
		namespace, name, RepoStateMarkedForDeletion))
	if err != nil {
		return nil, notFound(err, fmt.Sprintf("repository %s/%s", namespace, name))
	}
	return r, nil
}

// CreateRepository creates an image repository, as Quay's create_repository.
func (db *DB) CreateRepository(ctx context.Context, namespaceID int64, name string, public bool, creatorID int64) (*Repository, error) {
	vis := "private"
	if public {
		vis = "public"
	}
	var repo *Repository
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		var id int64
		err := db.queryRow(ctx, tx, `INSERT INTO repository (namespace_user_id, name, visibility_id, description,
			badge_token, kind_id, trust_enabled, state)
			VALUES (?, ?, (SELECT id FROM visibility WHERE name = ?), NULL, ?,
				(SELECT id FROM repositorykind WHERE name = 'image'), false, ?)
			RETURNING id`,
			namespaceID, name, vis, uuid.NewString(), RepoStateNormal).Scan(&id)
		if err != nil {
			if isUniqueViolation(err) {
				return ErrExists
			}
			return err
		}
		if creatorID != 0 && creatorID != namespaceID {
			if _, err := db.exec(ctx, tx, `INSERT INTO repositorypermission (user_id, repository_id, role_id)
				VALUES (?, ?, (SELECT id FROM role WHERE name = 'admin'))`, creatorID, id); err != nil {
				return fmt.Errorf("grant admin to creator: %w", err)
			}
		}
		var ns string
		if err := db.queryRow(ctx, tx, `SELECT username FROM "user" WHERE id = ?`, namespaceID).Scan(&ns); err != nil {
			return fmt.Errorf("namespace id %d: %w", namespaceID, err)
		}
		repo = &Repository{ID: id, NamespaceID: namespaceID, Namespace: ns, Name: name, Public: public, State: RepoStateNormal}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("create repository %q in namespace id %d: %w", name, namespaceID, err)
	}
	return repo, nil
}

// RepositoryRole computes the best role userID holds on the repository, as
// Quay's permission model does: owning the namespace, being in an admin team
// of the owning organisation, or a direct or team repositorypermission row.
func (db *DB) RepositoryRole(ctx context.Context, userID, repositoryID int64) (Role, error) {
	if userID == 0 {
		return RoleNone, nil
	}
	rows, err := db.query(ctx, db.r, `
		SELECT 'admin' FROM repository r
		WHERE r.id = ? AND r.namespace_user_id = ?
		UNION ALL
		SELECT 'admin' FROM repository r
		JOIN team t ON t.organization_id = r.namespace_user_id
		JOIN teamrole tr ON tr.id = t.role_id
		JOIN teammember tm ON tm.team_id = t.id
		WHERE r.id = ? AND tr.name = 'admin' AND tm.user_id = ?
		UNION ALL
		SELECT ro.name FROM repositorypermission rp
		JOIN role ro ON ro.id = rp.role_id
		WHERE rp.repository_id = ? AND rp.user_id = ?
		UNION ALL
		SELECT ro.name FROM repositorypermission rp
		JOIN role ro ON ro.id = rp.role_id
		JOIN teammember tm ON tm.team_id = rp.team_id
		WHERE rp.repository_id = ? AND tm.user_id = ?`,
		repositoryID, userID, repositoryID, userID, repositoryID, userID, repositoryID, userID)
	if err != nil {
		return RoleNone, fmt.Errorf("role of user id %d on repository id %d: %w", userID, repositoryID, err)
	}
	defer rows.Close()
	best := RoleNone
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return RoleNone, err
		}
		if r := Role(name); r.Rank() > best.Rank() {
			best = r
		}
	}
	if err := rows.Err(); err != nil {
		return RoleNone, fmt.Errorf("role of user id %d on repository id %d: %w", userID, repositoryID, err)
	}
	return best, nil
}

// ListVisibleRepositories lists "namespace/name" of the repositories userID
// may read, in byte order, after last, at most n.
func (db *DB) ListVisibleRepositories(ctx context.Context, userID int64, superuser bool, last string, n int) ([]string, error) {
	full := `(u.username || '/' || r.name)` + db.d.collateC()
	q := `SELECT u.username, r.name FROM repository r
		JOIN "user" u ON u.id = r.namespace_user_id
		JOIN visibility v ON v.id = r.visibility_id
		WHERE r.state <> ? AND ` + full + ` > ?`
	args := []any{RepoStateMarkedForDeletion, last}
	switch {
	case superuser:
	case userID == 0:
		q += ` AND v.name = 'public'`
	default:
		q += ` AND (v.name = 'public'
			OR r.namespace_user_id = ?
			OR EXISTS (SELECT 1 FROM repositorypermission rp
				WHERE rp.repository_id = r.id AND rp.user_id = ?)
			OR EXISTS (SELECT 1 FROM repositorypermission rp
				JOIN teammember tm ON tm.team_id = rp.team_id
				WHERE rp.repository_id = r.id AND tm.user_id = ?)
			OR EXISTS (SELECT 1 FROM team t
				JOIN teamrole tr ON tr.id = t.role_id
				JOIN teammember tm ON tm.team_id = t.id
				WHERE t.organization_id = r.namespace_user_id AND tr.name = 'admin' AND tm.user_id = ?))`
		args = append(args, userID, userID, userID, userID)
	}
	q += ` ORDER BY ` + full
	if n > 0 {
		q += ` LIMIT ?`
		args = append(args, n)
	}
	return queryAll(ctx, db, "list repositories", q, args, func(rows *sql.Rows) (string, error) {
		var ns, name string
		err := rows.Scan(&ns, &name)
		return ns + "/" + name, err
	})
}
