package password

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/quayctl/quayctl/collectors"
	"github.com/quayctl/quayctl/dbtools/pg"
)

// OpenOptions say which database to reach and how.
type OpenOptions struct {
	// Via forces one way (ViaDirect, ViaSQLite, ViaExec); "" tries them in
	// order: direct (a PostgreSQL DB_URI), sqlite (a SQLite DB_URI), exec
	// (a deployment with a database component).
	Via string
	// DBURI is Quay's DB_URI ("" when unknown).
	DBURI string
	// ConnectionArgs is DB_CONNECTION_ARGS (may be nil).
	ConnectionArgs map[string]any
	// Deployment is where exec runs psql (nil: no exec).
	Deployment collectors.Deployment
	// Exec tunes the exec way.
	Exec ExecOptions
}

// Attempt is one way tried and why it was not used.
type Attempt struct {
	Via string `json:"via"`
	Err error  `json:"-"`
}

// OpenError says no way reached the database, with each attempt's reason.
type OpenError struct {
	Attempts []Attempt
	Hint     string
}

func (e *OpenError) Error() string {
	if len(e.Attempts) == 1 {
		return e.Attempts[0].Err.Error()
	}
	var b strings.Builder
	b.WriteString("cannot reach the registry's database:")
	for _, a := range e.Attempts {
		fmt.Fprintf(&b, "\n  %s: %v", a.Via, a.Err)
	}
	if e.Hint != "" {
		b.WriteString("\n" + e.Hint)
	}
	return b.String()
}

// Unwrap gives errors.As access to each attempt's error.
func (e *OpenError) Unwrap() []error {
	errs := make([]error, len(e.Attempts))
	for i, a := range e.Attempts {
		errs[i] = a.Err
	}
	return errs
}

// ErrNoDatabase means nothing names a database: no DB_URI and no deployment.
var ErrNoDatabase = errors.New("no database to reach: pass --db URI, --config config.yaml, or a target (--podman, --openshift) whose database component quayctl can exec into")

// Open reaches the database one way, trying direct → sqlite → exec unless
// o.Via forces one. It returns the Target and the ways that failed before it
// (for a note to the administrator).
func Open(ctx context.Context, o OpenOptions) (Target, []Attempt, error) {
	if o.Via != "" && !slices.Contains(Vias, o.Via) {
		return nil, nil, fmt.Errorf("unknown way %q: use %s", o.Via, strings.Join(Vias, ", "))
	}
	var u pg.URI
	var uriErr error
	if o.DBURI != "" {
		u, uriErr = pg.ParseDBURI(o.DBURI, o.ConnectionArgs)
	}
	var failed []Attempt
	try := func(via string) bool { return o.Via == "" || o.Via == via }

	if try(ViaDirect) {
		switch {
		case uriErr != nil:
			failed = append(failed, Attempt{ViaDirect, uriErr})
		case u.Driver == pg.DriverPostgres:
			t, err := OpenDirect(ctx, u)
			if err == nil {
				return t, failed, nil
			}
			failed = append(failed, Attempt{ViaDirect, err})
		case o.Via == ViaDirect && u.Driver == pg.DriverSQLite:
			failed = append(failed, Attempt{ViaDirect, fmt.Errorf("%s is a SQLite database: use --via sqlite", u.Redacted)})
		case o.Via == ViaDirect:
			failed = append(failed, Attempt{ViaDirect, errors.New("no PostgreSQL DB_URI: pass --db postgresql://USER:PASSWORD@HOST:5432/DATABASE or --config")})
		}
	}
	if try(ViaSQLite) {
		switch {
		case uriErr != nil && o.Via == ViaSQLite:
			failed = append(failed, Attempt{ViaSQLite, uriErr})
		case uriErr == nil && u.Driver == pg.DriverSQLite:
			t, err := OpenSQLite(ctx, u)
			if err == nil {
				return t, failed, nil
			}
			failed = append(failed, Attempt{ViaSQLite, err})
		case o.Via == ViaSQLite:
			failed = append(failed, Attempt{ViaSQLite, errors.New("no SQLite DB_URI: pass --db sqlite:////path/to/quay.db")})
		}
	}
	if try(ViaExec) {
		switch {
		case u.Driver == pg.DriverSQLite && o.Via == "":
			// A SQLite database is not in a PostgreSQL component.
		case o.Deployment == nil:
			if o.Via == ViaExec {
				failed = append(failed, Attempt{ViaExec, errors.New("exec needs a deployment: pass --podman or --openshift (with --namespace)")})
			}
		default:
			eo := o.Exec
			if uriErr == nil && u.Driver == pg.DriverPostgres {
				eo.FallbackUser, eo.FallbackDatabase = u.User, u.Database
			}
			t := NewExec(o.Deployment, eo)
			if err := t.Resolve(ctx); err != nil {
				failed = append(failed, Attempt{ViaExec, err})
			} else {
				return t, failed, nil
			}
		}
	}
	if len(failed) == 0 {
		return nil, nil, ErrNoDatabase
	}
	return nil, failed, &OpenError{Attempts: failed}
}
