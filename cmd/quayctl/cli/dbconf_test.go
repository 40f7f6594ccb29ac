package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"

	"github.com/quayctl/quayctl/collectors"
)

func TestDBConfFlags(t *testing.T) {
	clear := func(o *DBConfOptions) { o.IO, o.Deployment = nil, nil }
	tkFlagTable(t, []string{"db"}, NewCmdDBConf, clear, []tkFlagCase[DBConfOptions]{
		{name: "defaults", args: []string{"db", "conf"}, want: DBConfOptions{Component: "database"}},
		{name: "clair's database", args: []string{"db", "conf", "clairpostgres", "--openshift"},
			want: DBConfOptions{Component: "clairpostgres", Target: TargetOptions{Kind: "openshift"}}},
		{name: "path", args: []string{"db", "conf", "--path", "/etc/postgresql/postgresql.conf"},
			want: DBConfOptions{Component: "database", Path: "/etc/postgresql/postgresql.conf"}},
		{name: "relative path", args: []string{"db", "conf", "--path", "postgresql.conf"}, wantErr: `--path "postgresql.conf": give the absolute path inside the container`},
		{name: "two components", args: []string{"db", "conf", "a", "b"}, wantErr: "quayctl db conf takes at most one argument: COMPONENT (default database)"},
	})
}

const pgConf = `# PostgreSQL configuration file
max_connections = 100
shared_buffers = 128MB
primary_conninfo = 'host=primary port=5432 user=replicator password=SEEDreplpw'
ssl = on
`

func TestDBConfRun(t *testing.T) {
	t.Run("red hat image path", func(t *testing.T) {
		d := podmanFake()
		d.files = map[string]string{"database:" + postgresConfPath: pgConf}
		io, out, errOut := tkIO("", false)
		if err := dbConfRun(context.Background(), &DBConfOptions{IO: io, Deployment: deploymentOf(d), Component: "database"}); err != nil {
			t.Fatal(err)
		}
		want := strings.Replace(pgConf, "password=SEEDreplpw'", "password=<redacted>'", 1)
		if out.String() != want {
			t.Errorf("stdout:\n%s\nwant\n%s", out, want)
		}
		if errOut.String() != "# database:"+postgresConfPath+"\nquayctl: 1 value redacted (key-value: 1)\n" {
			t.Errorf("stderr = %q", errOut.String())
		}
		if len(d.execs) != 0 {
			t.Errorf("exec'd %v although the file was there", d.execs)
		}
	})
	t.Run("SHOW config_file fallback", func(t *testing.T) {
		d := podmanFake()
		d.files = map[string]string{"database:/etc/postgresql/15/main/postgresql.conf": "max_connections = 300\n"}
		d.exec = func(component string, argv []string, stdout io.Writer) (int, error) {
			fmt.Fprintln(stdout, "/etc/postgresql/15/main/postgresql.conf")
			return 0, nil
		}
		io, out, errOut := tkIO("", false)
		if err := dbConfRun(context.Background(), &DBConfOptions{IO: io, Deployment: deploymentOf(d), Component: "database"}); err != nil {
			t.Fatal(err)
		}
		if out.String() != "max_connections = 300\n" {
			t.Errorf("stdout = %q", out.String())
		}
		if !reflect.DeepEqual(d.execs, [][]string{{"psql", "-tAc", "SHOW config_file"}}) {
			t.Errorf("exec = %v", d.execs)
		}
		if !strings.Contains(errOut.String(), "PostgreSQL says its config file is /etc/postgresql/15/main/postgresql.conf") {
			t.Errorf("stderr = %q", errOut.String())
		}
	})
	t.Run("psql fails", func(t *testing.T) {
		d := podmanFake()
		d.exec = func(component string, argv []string, stdout io.Writer) (int, error) { return 2, nil }
		io, _, _ := tkIO("", false)
		err := dbConfRun(context.Background(), &DBConfOptions{IO: io, Deployment: deploymentOf(d), Component: "database"})
		if err == nil || err.Error() != postgresConfPath+" is not in the database component, and asking PostgreSQL failed: psql -tAc 'SHOW config_file' exited 2:  — give the file's path with --path" {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("explicit path missing: no fallback", func(t *testing.T) {
		d := podmanFake()
		io, _, _ := tkIO("", false)
		err := dbConfRun(context.Background(), &DBConfOptions{IO: io, Deployment: deploymentOf(d), Component: "database", Path: "/x.conf"})
		if err == nil || !strings.HasPrefix(err.Error(), "cannot read /x.conf from the database component: read /x.conf in database: file does not exist") || len(d.execs) != 0 {
			t.Errorf("err = %v, execs %v", err, d.execs)
		}
	})
	t.Run("direct target", func(t *testing.T) {
		code, stdout, stderr := tkRun(t, context.Background(), nil, "db", "conf", "--db", "postgresql://u:SEEDpw@db/quay")
		if code != ExitError || stdout != "" || !strings.Contains(stderr, "--podman[=URL] (standalone) or --openshift") || strings.Contains(stderr, "SEED") {
			t.Errorf("exit %d\nstderr %s", code, stderr)
		}
	})
	t.Run("unknown component", func(t *testing.T) {
		io, _, _ := tkIO("", false)
		err := dbConfRun(context.Background(), &DBConfOptions{IO: io, Deployment: deploymentOf(podmanFake()), Component: "clairpostgres"})
		var nf *collectors.ComponentNotFoundError
		if !errors.As(err, &nf) {
			t.Errorf("err = %v", err)
		}
	})
}
