package store

import (
	"context"
	"database/sql"
	"fmt"
	"regexp"
	"strings"

	"github.com/google/uuid"
)

// Quay's naming rules (util/validation.py, data/model/user.py).
var (
	usernameRE  = regexp.MustCompile(`^([a-z0-9]+(?:[._-][a-z0-9]+)*)$`)
	robotNameRE = regexp.MustCompile(`^[a-z][a-z0-9_]{1,254}$`)
)

func validateNamespaceName(field, name string) error {
	if len(name) < 2 || len(name) > 255 || !usernameRE.MatchString(name) {
		return InvalidInputError{Field: field, Value: name,
			Reason: "must be 2 to 255 characters of [a-z0-9] separated by single '.', '_' or '-'"}
	}
	return nil
}

func validTeamRole(role string) bool {
	return role == TeamRoleAdmin || role == TeamRoleCreator || role == TeamRoleMember
}

func teamRoleRank(role string) int {
	switch role {
	case TeamRoleMember:
		return 1
	case TeamRoleCreator:
		return 2
	case TeamRoleAdmin:
		return 3
	}
	return 0
}

// userKind reads the organization/robot flags and name of a user row.
func (db *DB) userKind(ctx context.Context, q queryer, id int64) (name string, org, robot bool, err error) {
	err = db.queryRow(ctx, q, `SELECT username, organization, robot FROM "user" WHERE id = ?`, id).Scan(&name, &org, &robot)
	if err != nil {
		err = notFound(err, fmt.Sprintf("user id %d", id))
	}
	return
}

// CreateOrganization creates an organisation with its owners team holding
// the creator, as Quay's create_organization.
func (db *DB) CreateOrganization(ctx context.Context, name, email string, creatorID int64) (*User, error) {
	if err := validateNamespaceName("organization name", name); err != nil {
		return nil, err
	}
	var org *User
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		cname, corg, crobot, err := db.userKind(ctx, tx, creatorID)
		if err != nil {
			return fmt.Errorf("creator: %w", err)
		}
		if corg || crobot {
			return InvalidInputError{Field: "organization creator", Value: cname, Reason: "must be a user"}
		}
		if org, err = db.createUser(ctx, tx, NewUser{Username: name, Email: email, Organization: true}); err != nil {
			return err
		}
		var teamID int64
		if err := db.queryRow(ctx, tx, `INSERT INTO team (name, organization_id, role_id, description)
			VALUES (?, ?, (SELECT id FROM teamrole WHERE name = ?), '') RETURNING id`,
			OwnersTeam, org.ID, TeamRoleAdmin).Scan(&teamID); err != nil {
			return fmt.Errorf("create owners team: %w", err)
		}
		if _, err := db.exec(ctx, tx, `INSERT INTO teammember (user_id, team_id) VALUES (?, ?)`, creatorID, teamID); err != nil {
			return fmt.Errorf("add creator to owners: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("create organization %q: %w", name, err)
	}
	return org, nil
}

// requireOrg checks that id is an organisation.
func (db *DB) requireOrg(ctx context.Context, q queryer, id int64) (string, error) {
	name, org, _, err := db.userKind(ctx, q, id)
	if err != nil {
		return "", err
	}
	if !org {
		return "", fmt.Errorf("%s: %w", name, ErrNotOrganization)
	}
	return name, nil
}

const teamSelect = `SELECT t.id, t.organization_id, t.name, tr.name, t.description
	FROM team t JOIN teamrole tr ON tr.id = t.role_id`

func scanTeam(row interface{ Scan(...any) error }) (*Team, error) {
	var t Team
	if err := row.Scan(&t.ID, &t.OrganizationID, &t.Name, &t.Role, &t.Description); err != nil {
		return nil, err
	}
	return &t, nil
}

// CreateTeam creates a team in an organisation with a Quay teamrole.
func (db *DB) CreateTeam(ctx context.Context, orgID int64, name, role, description string) (*Team, error) {
	if err := validateNamespaceName("team name", name); err != nil {
		return nil, err
	}
	if !validTeamRole(role) {
		return nil, InvalidInputError{Field: "team role", Value: role, Reason: "must be admin, creator or member"}
	}
	var team *Team
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := db.requireOrg(ctx, tx, orgID); err != nil {
			return err
		}
		var id int64
		err := db.queryRow(ctx, tx, `INSERT INTO team (name, organization_id, role_id, description)
			VALUES (?, ?, (SELECT id FROM teamrole WHERE name = ?), ?) RETURNING id`,
			name, orgID, role, description).Scan(&id)
		if err != nil {
			if isUniqueViolation(err) {
				return ErrExists
			}
			return err
		}
		team = &Team{ID: id, OrganizationID: orgID, Name: name, Role: role, Description: description}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("create team %q in organization id %d: %w", name, orgID, err)
	}
	return team, nil
}

// TeamByName finds a team of an organisation.
func (db *DB) TeamByName(ctx context.Context, orgID int64, name string) (*Team, error) {
	t, err := scanTeam(db.queryRow(ctx, db.r, teamSelect+` WHERE t.organization_id = ? AND t.name = ?`, orgID, name))
	if err != nil {
		return nil, notFound(err, fmt.Sprintf("team %q of organization id %d", name, orgID))
	}
	return t, nil
}

// ListTeams lists an organisation's teams by name.
func (db *DB) ListTeams(ctx context.Context, orgID int64) ([]Team, error) {
	return queryAll(ctx, db, "list teams", teamSelect+` WHERE t.organization_id = ? ORDER BY t.name`,
		[]any{orgID}, func(rows *sql.Rows) (Team, error) {
			t, err := scanTeam(rows)
			if err != nil {
				return Team{}, err
			}
			return *t, nil
		})
}

// AddTeamMember adds a user or a robot of the organisation to a team;
// adding a member twice is harmless.
func (db *DB) AddTeamMember(ctx context.Context, teamID, userID int64) error {
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		var orgName string
		if err := db.queryRow(ctx, tx, `SELECT u.username FROM team t JOIN "user" u ON u.id = t.organization_id
			WHERE t.id = ?`, teamID).Scan(&orgName); err != nil {
			return notFound(err, "team")
		}
		name, org, robot, err := db.userKind(ctx, tx, userID)
		if err != nil {
			return err
		}
		if org {
			return InvalidInputError{Field: "team member", Value: name, Reason: "an organization cannot be a team member"}
		}
		if robot && !strings.HasPrefix(name, orgName+"+") {
			return InvalidInputError{Field: "team member", Value: name, Reason: "robot does not belong to organization " + orgName}
		}
		_, err = db.exec(ctx, tx, `INSERT INTO teammember (user_id, team_id) VALUES (?, ?)
			ON CONFLICT (user_id, team_id) DO NOTHING`, userID, teamID)
		return err
	})
	if err != nil {
		return fmt.Errorf("add user id %d to team id %d: %w", userID, teamID, err)
	}
	return nil
}

// RemoveTeamMember removes a member from a team.
func (db *DB) RemoveTeamMember(ctx context.Context, teamID, userID int64) error {
	what := fmt.Sprintf("remove user id %d from team id %d", userID, teamID)
	res, err := db.exec(ctx, db.w, `DELETE FROM teammember WHERE team_id = ? AND user_id = ?`, teamID, userID)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return checkAffected(res, what)
}

// TeamMembers lists a team's users and robots by username.
func (db *DB) TeamMembers(ctx context.Context, teamID int64) ([]User, error) {
	cols := "u." + strings.ReplaceAll(strings.Join(strings.Fields(userColumns), " "), ", ", ", u.")
	return queryAll(ctx, db, "list team members", `SELECT `+cols+` FROM teammember tm
		JOIN "user" u ON u.id = tm.user_id WHERE tm.team_id = ? ORDER BY u.username`,
		[]any{teamID}, func(rows *sql.Rows) (User, error) {
			u, err := scanUser(rows)
			if err != nil {
				return User{}, err
			}
			return *u, nil
		})
}

// DeleteTeam removes a team, its memberships and its repository
// permissions; the owners team cannot be deleted.
func (db *DB) DeleteTeam(ctx context.Context, teamID int64) error {
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		var name string
		if err := db.queryRow(ctx, tx, `SELECT name FROM team WHERE id = ?`, teamID).Scan(&name); err != nil {
			return notFound(err, "team")
		}
		if name == OwnersTeam {
			return ErrOwnersTeam
		}
		for _, q := range []string{
			`DELETE FROM teammember WHERE team_id = ?`,
			`DELETE FROM repositorypermission WHERE team_id = ?`,
			`DELETE FROM team WHERE id = ?`,
		} {
			if _, err := db.exec(ctx, tx, q, teamID); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("delete team id %d: %w", teamID, err)
	}
	return nil
}

// NamespaceRole is userID's role in a namespace, from Quay's teamroles.
func (db *DB) NamespaceRole(ctx context.Context, userID, namespaceID int64) (string, error) {
	if userID == 0 {
		return "", nil
	}
	if userID == namespaceID {
		return TeamRoleAdmin, nil
	}
	roles, err := queryAll(ctx, db, "namespace role", `SELECT tr.name FROM team t
		JOIN teamrole tr ON tr.id = t.role_id
		JOIN teammember tm ON tm.team_id = t.id
		WHERE t.organization_id = ? AND tm.user_id = ?`, []any{namespaceID, userID}, scanString)
	if err != nil {
		return "", fmt.Errorf("role of user id %d in namespace id %d: %w", userID, namespaceID, err)
	}
	best := ""
	for _, r := range roles {
		if teamRoleRank(r) > teamRoleRank(best) {
			best = r
		}
	}
	return best, nil
}

// CreateRobot creates a robot account as Quay's create_robot.
func (db *DB) CreateRobot(ctx context.Context, namespaceID int64, shortName, description, encryptedToken string) (*User, error) {
	if !robotNameRE.MatchString(shortName) {
		return nil, InvalidInputError{Field: "robot name", Value: shortName,
			Reason: "must match ^[a-z][a-z0-9_]{1,254}$"}
	}
	if len(description) > 255 {
		return nil, InvalidInputError{Field: "robot description", Value: description[:32] + "…", Reason: "longer than 255 characters"}
	}
	if encryptedToken == "" || len(encryptedToken) > 255 {
		return nil, InvalidInputError{Field: "robot token", Value: "", Reason: "must be 1 to 255 characters"}
	}
	var robot *User
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		ns, _, nsRobot, err := db.userKind(ctx, tx, namespaceID)
		if err != nil {
			return fmt.Errorf("namespace: %w", err)
		}
		if nsRobot {
			return InvalidInputError{Field: "robot namespace", Value: ns, Reason: "a robot cannot own robots"}
		}
		full := ns + "+" + shortName
		if len(full) > 255 {
			return InvalidInputError{Field: "robot name", Value: full, Reason: "longer than 255 characters"}
		}
		if robot, err = db.createUser(ctx, tx, NewUser{Username: full, Email: uuid.NewString(), Robot: true}); err != nil {
			return err
		}
		if _, err := db.exec(ctx, tx, `INSERT INTO robotaccounttoken (robot_account_id, token, fully_migrated)
			VALUES (?, ?, true)`, robot.ID, encryptedToken); err != nil {
			return fmt.Errorf("robot token: %w", err)
		}
		if _, err := db.exec(ctx, tx, `INSERT INTO federatedlogin (user_id, service_id, service_ident, metadata_json)
			VALUES (?, (SELECT id FROM loginservice WHERE name = 'quayrobot'), ?, '{}')`,
			robot.ID, fmt.Sprintf("robot:%d", robot.ID)); err != nil {
			return fmt.Errorf("robot federated login: %w", err)
		}
		if _, err := db.exec(ctx, tx, `INSERT INTO robotaccountmetadata (robot_account_id, description, unstructured_json)
			VALUES (?, ?, '{}')`, robot.ID, description); err != nil {
			return fmt.Errorf("robot metadata: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("create robot %q in namespace id %d: %w", shortName, namespaceID, err)
	}
	return robot, nil
}

// RobotToken returns a robot's token as stored (encrypted).
func (db *DB) RobotToken(ctx context.Context, robotID int64) (string, error) {
	var tok string
	if err := db.queryRow(ctx, db.r, `SELECT token FROM robotaccounttoken WHERE robot_account_id = ?`, robotID).Scan(&tok); err != nil {
		return "", notFound(err, fmt.Sprintf("token of robot id %d", robotID))
	}
	return tok, nil
}

// SetRobotToken replaces a robot's (encrypted) token.
func (db *DB) SetRobotToken(ctx context.Context, robotID int64, encryptedToken string) error {
	what := fmt.Sprintf("set token of robot id %d", robotID)
	if encryptedToken == "" || len(encryptedToken) > 255 {
		return InvalidInputError{Field: "robot token", Value: "", Reason: "must be 1 to 255 characters"}
	}
	res, err := db.exec(ctx, db.w, `UPDATE robotaccounttoken SET token = ?, fully_migrated = true
		WHERE robot_account_id = ?`, encryptedToken, robotID)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return checkAffected(res, what)
}

// ListRobots lists a namespace's robots by name.
func (db *DB) ListRobots(ctx context.Context, namespaceID int64) ([]Robot, error) {
	var ns string
	if err := db.queryRow(ctx, db.r, `SELECT username FROM "user" WHERE id = ?`, namespaceID).Scan(&ns); err != nil {
		return nil, notFound(err, fmt.Sprintf("namespace id %d", namespaceID))
	}
	prefix := ns + "+"
	return queryAll(ctx, db, "list robots", `SELECT u.id, u.username, m.description, u.creation_date
		FROM "user" u LEFT JOIN robotaccountmetadata m ON m.robot_account_id = u.id
		WHERE u.robot = true AND substr(u.username, 1, ?) = ?
		ORDER BY u.username`+db.d.collateC(), []any{len(prefix), prefix},
		func(rows *sql.Rows) (Robot, error) {
			var (
				r       Robot
				desc    sql.NullString
				created nullTime
			)
			err := rows.Scan(&r.ID, &r.Name, &desc, &created)
			r.Description, r.Created = desc.String, created.Time
			return r, err
		})
}

// DeleteRobot removes a robot and every row that refers to it.
func (db *DB) DeleteRobot(ctx context.Context, robotID int64) error {
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		var robot bool
		if err := db.queryRow(ctx, tx, `SELECT robot FROM "user" WHERE id = ?`, robotID).Scan(&robot); err != nil {
			return notFound(err, "robot")
		}
		if !robot {
			return fmt.Errorf("user id %d is not a robot: %w", robotID, ErrNotFound)
		}
		for _, q := range []string{
			`DELETE FROM robotaccounttoken WHERE robot_account_id = ?`,
			`DELETE FROM robotaccountmetadata WHERE robot_account_id = ?`,
			`DELETE FROM federatedlogin WHERE user_id = ?`,
			`DELETE FROM teammember WHERE user_id = ?`,
			`DELETE FROM repositorypermission WHERE user_id = ?`,
			`DELETE FROM oauthaccesstoken WHERE authorized_user_id = ?`,
			`DELETE FROM appspecificauthtoken WHERE user_id = ?`,
			`DELETE FROM notification WHERE target_id = ?`,
			`DELETE FROM "user" WHERE id = ?`,
		} {
			if _, err := db.exec(ctx, tx, q, robotID); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("delete robot id %d: %w", robotID, err)
	}
	return nil
}

// permissionTarget validates a grant's principal against the repository's
// namespace: exactly one of userID and teamID, an existing user (not an
// organisation) or team, robots and teams of the repository's namespace.
func (db *DB) permissionTarget(ctx context.Context, q queryer, repoID, userID, teamID int64) error {
	if (userID == 0) == (teamID == 0) {
		return InvalidInputError{Field: "permission", Value: fmt.Sprintf("user %d, team %d", userID, teamID),
			Reason: "exactly one of user and team must be given"}
	}
	var nsID int64
	var ns string
	if err := db.queryRow(ctx, q, `SELECT r.namespace_user_id, u.username FROM repository r
		JOIN "user" u ON u.id = r.namespace_user_id WHERE r.id = ?`, repoID).Scan(&nsID, &ns); err != nil {
		return notFound(err, "repository")
	}
	if teamID != 0 {
		var orgID int64
		if err := db.queryRow(ctx, q, `SELECT organization_id FROM team WHERE id = ?`, teamID).Scan(&orgID); err != nil {
			return notFound(err, "team")
		}
		if orgID != nsID {
			return InvalidInputError{Field: "permission", Value: fmt.Sprintf("team id %d", teamID),
				Reason: "team does not belong to namespace " + ns}
		}
		return nil
	}
	name, org, robot, err := db.userKind(ctx, q, userID)
	if err != nil {
		return err
	}
	if org {
		return InvalidInputError{Field: "permission", Value: name, Reason: "an organization cannot hold a permission"}
	}
	if robot && !strings.HasPrefix(name, ns+"+") {
		return InvalidInputError{Field: "permission", Value: name, Reason: "robot does not belong to namespace " + ns}
	}
	return nil
}

// SetRepositoryPermission grants role to a user, robot or team, replacing
// any role it held on the repository.
func (db *DB) SetRepositoryPermission(ctx context.Context, repoID, userID, teamID int64, role Role) error {
	if role.Rank() == 0 {
		return InvalidInputError{Field: "role", Value: string(role), Reason: "must be read, write or admin"}
	}
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		if err := db.permissionTarget(ctx, tx, repoID, userID, teamID); err != nil {
			return err
		}
		col := "user_id"
		id := userID
		if teamID != 0 {
			col, id = "team_id", teamID
		}
		_, err := db.exec(ctx, tx, `INSERT INTO repositorypermission (`+col+`, repository_id, role_id)
			VALUES (?, ?, (SELECT id FROM role WHERE name = ?))
			ON CONFLICT (`+col+`, repository_id) DO UPDATE SET role_id = excluded.role_id`, id, repoID, string(role))
		return err
	})
	if err != nil {
		return fmt.Errorf("set permission on repository id %d: %w", repoID, err)
	}
	return nil
}

// DeleteRepositoryPermission removes a user's, robot's or team's grant.
func (db *DB) DeleteRepositoryPermission(ctx context.Context, repoID, userID, teamID int64) error {
	what := fmt.Sprintf("delete permission on repository id %d", repoID)
	if (userID == 0) == (teamID == 0) {
		return InvalidInputError{Field: "permission", Value: fmt.Sprintf("user %d, team %d", userID, teamID),
			Reason: "exactly one of user and team must be given"}
	}
	col, id := "user_id", userID
	if teamID != 0 {
		col, id = "team_id", teamID
	}
	res, err := db.exec(ctx, db.w, `DELETE FROM repositorypermission WHERE repository_id = ? AND `+col+` = ?`, repoID, id)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return checkAffected(res, what)
}

// ListRepositoryPermissions lists a repository's grants: teams first, then
// users and robots, each by name.
func (db *DB) ListRepositoryPermissions(ctx context.Context, repoID int64) ([]Permission, error) {
	return queryAll(ctx, db, "list permissions", `
		SELECT 'team', t.id, t.name, ro.name, 0 FROM repositorypermission rp
		JOIN team t ON t.id = rp.team_id JOIN role ro ON ro.id = rp.role_id
		WHERE rp.repository_id = ?
		UNION ALL
		SELECT CASE WHEN u.robot THEN 'robot' ELSE 'user' END, u.id, u.username, ro.name, 1 FROM repositorypermission rp
		JOIN "user" u ON u.id = rp.user_id JOIN role ro ON ro.id = rp.role_id
		WHERE rp.repository_id = ?
		ORDER BY 5, 3`, []any{repoID, repoID},
		func(rows *sql.Rows) (Permission, error) {
			var p Permission
			var (
				role string
				key  int
			)
			err := rows.Scan(&p.Kind, &p.ID, &p.Name, &role, &key)
			p.Role = Role(role)
			return p, err
		})
}

// SetRepositoryVisibility makes a repository public or private.
func (db *DB) SetRepositoryVisibility(ctx context.Context, repoID int64, public bool) error {
	vis := "private"
	if public {
		vis = "public"
	}
	what := fmt.Sprintf("set visibility of repository id %d", repoID)
	res, err := db.exec(ctx, db.w, `UPDATE repository SET visibility_id = (SELECT id FROM visibility WHERE name = ?)
		WHERE id = ?`, vis, repoID)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return checkAffected(res, what)
}

// SetRepositoryDescription replaces a repository's description ("" stores
// NULL, as a repository created without one).
func (db *DB) SetRepositoryDescription(ctx context.Context, repoID int64, description string) error {
	what := fmt.Sprintf("set description of repository id %d", repoID)
	res, err := db.exec(ctx, db.w, `UPDATE repository SET description = ? WHERE id = ?`, nullString(description), repoID)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return checkAffected(res, what)
}
