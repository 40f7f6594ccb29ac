package autoprune

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quayctl/quayctl/internal/testpg"
	"github.com/quayctl/quayctl/registry/store"
)

func TestMain(m *testing.M) { testpg.Main(m) }

func ptr[T any](v T) *T { return &v }

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		in      Input
		stored  string // want, when valid
		wantErr string // substring, when invalid
	}{
		{"count", Input{Method: "number_of_tags", Value: json.RawMessage(`10`)}, `{"method":"number_of_tags","value":10,"tag_pattern":null,"tag_pattern_matches":true}`, ""},
		{"age with pattern", Input{Method: "creation_date", Value: json.RawMessage(`"7d"`), TagPattern: ptr("^v1"), TagPatternMatches: ptr(false)},
			`{"method":"creation_date","value":"7d","tag_pattern":"^v1","tag_pattern_matches":false}`, ""},
		{"minutes", Input{Method: "creation_date", Value: json.RawMessage(`"90m"`)}, `{"method":"creation_date","value":"90m","tag_pattern":null,"tag_pattern_matches":true}`, ""},
		{"weeks", Input{Method: "creation_date", Value: json.RawMessage(`"2w"`)}, `{"method":"creation_date","value":"2w","tag_pattern":null,"tag_pattern_matches":true}`, ""},
		{"unknown method", Input{Method: "newest", Value: json.RawMessage(`1`)}, "", `unknown method "newest"`},
		{"no method", Input{Value: json.RawMessage(`1`)}, "", `unknown method ""`},
		{"missing value", Input{Method: "number_of_tags"}, "", "missing value"},
		{"zero tags", Input{Method: "number_of_tags", Value: json.RawMessage(`0`)}, "", "at least 1"},
		{"negative tags", Input{Method: "number_of_tags", Value: json.RawMessage(`-3`)}, "", "at least 1"},
		{"fractional tags", Input{Method: "number_of_tags", Value: json.RawMessage(`1.5`)}, "", "at least 1"},
		{"count as text", Input{Method: "number_of_tags", Value: json.RawMessage(`"10"`)}, "", "whole number of tags"},
		{"bad unit", Input{Method: "creation_date", Value: json.RawMessage(`"7x"`)}, "", "is not a duration"},
		{"space before the unit", Input{Method: "creation_date", Value: json.RawMessage(`"7 d"`)}, "", "is not a duration"},
		{"no unit", Input{Method: "creation_date", Value: json.RawMessage(`"7"`)}, "", "is not a duration"},
		{"zero age", Input{Method: "creation_date", Value: json.RawMessage(`"0d"`)}, "", "is not a duration"},
		{"age as number", Input{Method: "creation_date", Value: json.RawMessage(`7`)}, "", "duration string"},
		{"empty pattern", Input{Method: "number_of_tags", Value: json.RawMessage(`1`), TagPattern: ptr("")}, "", "tagPattern is empty"},
		{"bad regex", Input{Method: "number_of_tags", Value: json.RawMessage(`1`), TagPattern: ptr("v[")}, "", "not a valid regular expression"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Parse(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := p.Stored(); got != tc.stored {
				t.Fatalf("stored = %s\nwant %s", got, tc.stored)
			}
			back, err := Load(p.Stored())
			if err != nil || back.Stored() != tc.stored {
				t.Fatalf("Load(Stored()) = %v, %v", back, err)
			}
		})
	}
}

// world is a migrated database with helpers to build namespaces and tags.
type world struct {
	st  *store.DB
	raw *sql.DB // the same database, for setting tag ages directly
	uri string
}

func newWorld(t *testing.T, dialect string) *world {
	t.Helper()
	ctx := context.Background()
	var uri, driver, dsn string
	if dialect == "sqlite" {
		path := filepath.Join(t.TempDir(), "quay.db")
		uri, driver, dsn = "sqlite:///"+path, "sqlite", path
	} else {
		uri = testpg.NewDatabase(t)
		driver, dsn = "pgx", uri
	}
	st, err := store.Open(ctx, uri)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	raw, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	return &world{st: st, raw: raw, uri: uri}
}

func digestOf(s string) string {
	sum := sha256.Sum256([]byte(s))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// repo creates namespace/name (the organisation on first use).
func (w *world) repo(t *testing.T, namespace, name string) *store.Repository {
	t.Helper()
	ctx := context.Background()
	ns, err := w.st.UserByName(ctx, namespace)
	if err != nil {
		if ns, err = w.st.CreateUser(ctx, store.NewUser{Username: namespace, Organization: true}); err != nil {
			t.Fatal(err)
		}
	}
	r, err := w.st.CreateRepository(ctx, ns.ID, name, false, ns.ID)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// tag pushes a distinct image as tag and dates its start ageDays ago.
func (w *world) tag(t *testing.T, r *store.Repository, tag string, ageDays int) {
	t.Helper()
	ctx := context.Background()
	seed := r.FullName() + ":" + tag
	var digests []string
	for _, c := range []string{"config " + seed, "layer " + seed} {
		d := digestOf(c)
		if _, err := w.st.LinkBlob(ctx, r.ID, d, int64(len(c)), "default", time.Hour); err != nil {
			t.Fatal(err)
		}
		digests = append(digests, d)
	}
	body := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"digest":%q},"layers":[{"digest":%q}]}`, digests[0], digests[1])
	if _, err := w.st.PutManifest(ctx, store.PutManifestParams{RepositoryID: r.ID, Tag: tag, BlobDigests: digests,
		Manifest: store.Manifest{Digest: digestOf(body), MediaType: "application/vnd.oci.image.manifest.v1+json", Bytes: []byte(body),
			ConfigMediaType: "application/vnd.oci.image.config.v1+json"}}); err != nil {
		t.Fatal(err)
	}
	start := time.Now().Add(-time.Duration(ageDays) * 24 * time.Hour).UnixMilli()
	q := `UPDATE tag SET lifetime_start_ms = ? WHERE repository_id = ? AND name = ?`
	if strings.HasPrefix(w.uri, "postgres") {
		q = `UPDATE tag SET lifetime_start_ms = $1 WHERE repository_id = $2 AND name = $3`
	}
	if _, err := w.raw.ExecContext(ctx, q, start, r.ID, tag); err != nil {
		t.Fatal(err)
	}
}

func (w *world) policy(t *testing.T, namespace string, in Input) {
	t.Helper()
	ctx := context.Background()
	ns, err := w.st.UserByName(ctx, namespace)
	if err != nil {
		t.Fatal(err)
	}
	p, err := Parse(in)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.st.CreateNamespaceAutoPrunePolicy(ctx, ns.ID, p.Stored()); err != nil {
		t.Fatal(err)
	}
}

func (w *world) tags(t *testing.T, r *store.Repository) []string {
	t.Helper()
	names, err := w.st.ListTags(context.Background(), r.ID, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// prunedTags lists the tags of the namespace's autoprune_tag_delete audit
// rows in the order they were written.
func (w *world) prunedTags(t *testing.T, namespace string) []string {
	t.Helper()
	ctx := context.Background()
	ns, err := w.st.UserByName(ctx, namespace)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := w.st.Logs(ctx, store.LogQuery{AccountID: ns.ID, Kind: "autoprune_tag_delete", Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].ID < rows[j].ID })
	var out []string
	for _, r := range rows {
		out = append(out, fmt.Sprint(r.Metadata["tag"]))
	}
	return out
}

var dialects = []string{"sqlite", "postgresql"}

func TestPrune(t *testing.T) {
	type tagAge struct {
		name string
		days int
	}
	tests := []struct {
		name       string
		tags       []tagAge
		policy     Input
		wantPruned []string // in order: oldest first
	}{
		{"keep newest two", []tagAge{{"a", 5}, {"b", 4}, {"c", 3}, {"d", 2}, {"e", 1}},
			Input{Method: MethodNumberOfTags, Value: json.RawMessage(`2`)}, []string{"a", "b", "c"}},
		{"count below the limit", []tagAge{{"a", 5}, {"b", 4}},
			Input{Method: MethodNumberOfTags, Value: json.RawMessage(`2`)}, nil},
		{"count among matching tags", []tagAge{{"v1", 5}, {"v2", 4}, {"dev", 3}, {"v3", 1}},
			Input{Method: MethodNumberOfTags, Value: json.RawMessage(`1`), TagPattern: ptr("^v")}, []string{"v1", "v2"}},
		{"count among other tags", []tagAge{{"v1", 5}, {"dev1", 4}, {"dev2", 3}, {"v2", 1}},
			Input{Method: MethodNumberOfTags, Value: json.RawMessage(`1`), TagPattern: ptr("^v"), TagPatternMatches: ptr(false)}, []string{"dev1"}},
		{"older than three days", []tagAge{{"a", 5}, {"b", 4}, {"c", 2}, {"d", 1}},
			Input{Method: MethodCreationDate, Value: json.RawMessage(`"3d"`)}, []string{"a", "b"}},
		{"old matching tags", []tagAge{{"rel1", 6}, {"tmp", 5}, {"rel2", 1}},
			Input{Method: MethodCreationDate, Value: json.RawMessage(`"3d"`), TagPattern: ptr("^rel")}, []string{"rel1"}},
		{"old other tags", []tagAge{{"rel1", 6}, {"tmp", 5}, {"rel2", 1}},
			Input{Method: MethodCreationDate, Value: json.RawMessage(`"3d"`), TagPattern: ptr("^rel"), TagPatternMatches: ptr(false)}, []string{"tmp"}},
		{"cosign signatures stay", []tagAge{{"a", 5}, {"sha256-0123.sig", 5}, {"b", 1}},
			Input{Method: MethodNumberOfTags, Value: json.RawMessage(`1`)}, []string{"a"}},
	}
	for _, d := range dialects {
		t.Run(d, func(t *testing.T) {
			w := newWorld(t, d)
			ctx := context.Background()
			for i, tc := range tests {
				ns := fmt.Sprintf("ns%d", i)
				r := w.repo(t, ns, "app")
				for _, ta := range tc.tags {
					w.tag(t, r, ta.name, ta.days)
				}
				w.policy(t, ns, tc.policy)
			}
			p := New(w.st, Options{BatchSize: len(tests) + 1})
			res, err := p.RunOnce(ctx)
			if err != nil {
				t.Fatal(err)
			}
			total := 0
			for i, tc := range tests {
				ns := fmt.Sprintf("ns%d", i)
				t.Run(tc.name, func(t *testing.T) {
					got := w.prunedTags(t, ns)
					if !slices.Equal(got, tc.wantPruned) {
						t.Errorf("pruned %v, want %v (in this order)", got, tc.wantPruned)
					}
					r, err := w.st.Repository(ctx, ns, "app")
					if err != nil {
						t.Fatal(err)
					}
					var want []string
					for _, ta := range tc.tags {
						if !slices.Contains(tc.wantPruned, ta.name) {
							want = append(want, ta.name)
						}
					}
					slices.Sort(want)
					if got := w.tags(t, r); !slices.Equal(got, want) {
						t.Errorf("tags left %v, want %v", got, want)
					}
					nsU, _ := w.st.UserByName(ctx, ns)
					if status, last, err := w.st.AutoPruneTaskStatus(ctx, nsU.ID); err != nil || status != store.AutoPruneSuccess || last == nil {
						t.Errorf("task status %q %v %v", status, last, err)
					}
				})
				total += len(tc.wantPruned)
			}
			if res.Namespaces != len(tests) || res.Pruned != total || res.Failed != 0 {
				t.Errorf("result %+v, want %d namespaces and %d tags", res, len(tests), total)
			}
			// The next pass finds nothing due (the minimum interval).
			if res, err := p.RunOnce(ctx); err != nil || res.Namespaces != 0 {
				t.Errorf("second pass %+v %v", res, err)
			}
		})
	}
}

// TestPruneSeveralPolicies: both methods on one namespace, across several
// repositories (paged one at a time).
func TestPruneSeveralPolicies(t *testing.T) {
	for _, d := range dialects {
		t.Run(d, func(t *testing.T) {
			w := newWorld(t, d)
			var repos []*store.Repository
			for _, name := range []string{"one", "two", "three"} {
				r := w.repo(t, "acme", name)
				for i, age := range []int{10, 6, 2, 1} {
					w.tag(t, r, fmt.Sprintf("t%d", i), age)
				}
				repos = append(repos, r)
			}
			w.policy(t, "acme", Input{Method: MethodCreationDate, Value: json.RawMessage(`"1w"`)})
			w.policy(t, "acme", Input{Method: MethodNumberOfTags, Value: json.RawMessage(`2`)})
			res, err := New(w.st, Options{RepositoryPageSize: 1}).RunOnce(context.Background())
			if err != nil || res.Pruned != 6 {
				t.Fatalf("RunOnce = %+v, %v; want 6 tags pruned", res, err)
			}
			for _, r := range repos {
				if got := w.tags(t, r); !slices.Equal(got, []string{"t2", "t3"}) {
					t.Errorf("%s: tags %v, want [t2 t3]", r.FullName(), got)
				}
			}
		})
	}
}

// TestTwoWorkersOnePostgres: two pruners with their own connection pools
// share one PostgreSQL; every namespace is pruned exactly once per round.
func TestTwoWorkersOnePostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("heavy: many namespaces on PostgreSQL")
	}
	w := newWorld(t, "postgresql")
	const namespaces, tagsPer, keep = 8, 5, 2
	for i := range namespaces {
		ns := fmt.Sprintf("org%d", i)
		r := w.repo(t, ns, "app")
		for j := range tagsPer {
			w.tag(t, r, fmt.Sprintf("t%d", j), tagsPer-j)
		}
		w.policy(t, ns, Input{Method: MethodNumberOfTags, Value: json.RawMessage(fmt.Sprint(keep))})
	}
	ctx := context.Background()
	var (
		mu    sync.Mutex
		total Result
		wg    sync.WaitGroup
	)
	for range 2 {
		st, err := store.Open(ctx, w.uri)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		p := New(st, Options{BatchSize: 1})
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				res, err := p.RunOnce(ctx)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				total.Namespaces += res.Namespaces
				total.Pruned += res.Pruned
				mu.Unlock()
				if res.Namespaces == 0 {
					return
				}
			}
		}()
	}
	wg.Wait()
	if total.Namespaces != namespaces || total.Pruned != namespaces*(tagsPer-keep) {
		t.Fatalf("two workers ran %d namespace tasks and pruned %d tags, want %d and %d",
			total.Namespaces, total.Pruned, namespaces, namespaces*(tagsPer-keep))
	}
	for i := range namespaces {
		ns := fmt.Sprintf("org%d", i)
		if got := w.prunedTags(t, ns); !slices.Equal(got, []string{"t0", "t1", "t2"}) {
			t.Errorf("%s: audit rows for %v, want one each for t0 t1 t2", ns, got)
		}
	}
}

// TestRepositoryPolicies: a repository's own policy prunes that repository
// only, after the namespace's policies.
func TestRepositoryPolicies(t *testing.T) {
	for _, d := range dialects {
		t.Run(d, func(t *testing.T) {
			w := newWorld(t, d)
			ctx := context.Background()
			app, web := w.repo(t, "acme", "app"), w.repo(t, "acme", "web")
			for _, r := range []*store.Repository{app, web} {
				for i := range 5 {
					w.tag(t, r, fmt.Sprintf("t%d", i), 10-i)
				}
			}
			w.policy(t, "acme", Input{Method: MethodNumberOfTags, Value: json.RawMessage(`4`)})
			p, err := Parse(Input{Method: MethodNumberOfTags, Value: json.RawMessage(`2`)})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := w.st.CreateRepositoryAutoPrunePolicy(ctx, app.NamespaceID, app.ID, p.Stored()); err != nil {
				t.Fatal(err)
			}
			res, err := New(w.st, Options{}).RunOnce(ctx)
			if err != nil || res.Namespaces != 1 || res.Pruned != 4 {
				t.Fatalf("RunOnce = %+v, %v; want one namespace, 4 tags", res, err)
			}
			if got := w.tags(t, app); !slices.Equal(got, []string{"t3", "t4"}) {
				t.Errorf("app keeps %v, want [t3 t4]", got)
			}
			if got := w.tags(t, web); !slices.Equal(got, []string{"t1", "t2", "t3", "t4"}) {
				t.Errorf("web keeps %v, want [t1 t2 t3 t4]", got)
			}
		})
	}
}

// TestFromConfig reads DEFAULT_NAMESPACE_AUTOPRUNE_POLICY as YAML decodes
// it: numbers as ints or floats, either spelling of the tag filter.
func TestFromConfig(t *testing.T) {
	tests := []struct {
		name string
		in   map[string]any
		want string // Stored() of the policy, when no error is wanted
		err  string
	}{
		{"count", map[string]any{"method": "number_of_tags", "value": 10}, `{"method":"number_of_tags","value":10,"tag_pattern":null,"tag_pattern_matches":true}`, ""},
		{"count as a float", map[string]any{"method": "number_of_tags", "value": 10.0}, `{"method":"number_of_tags","value":10,"tag_pattern":null,"tag_pattern_matches":true}`, ""},
		{"age with an API-style filter", map[string]any{"method": "creation_date", "value": "30d", "tagPattern": "^dev-", "tagPatternMatches": false},
			`{"method":"creation_date","value":"30d","tag_pattern":"^dev-","tag_pattern_matches":false}`, ""},
		{"stored-style filter", map[string]any{"method": "creation_date", "value": "2w", "tag_pattern": "^pr-"},
			`{"method":"creation_date","value":"2w","tag_pattern":"^pr-","tag_pattern_matches":true}`, ""},
		{"unknown method", map[string]any{"method": "newest", "value": 1}, "", "unknown method"},
		{"no value", map[string]any{"method": "number_of_tags"}, "", "missing value"},
		{"zero tags", map[string]any{"method": "number_of_tags", "value": 0}, "", "at least 1"},
		{"bad age", map[string]any{"method": "creation_date", "value": "30 days"}, "", "is not a duration"},
		{"method not a string", map[string]any{"method": 3, "value": 1}, "", "method must be"},
		{"unknown field", map[string]any{"method": "number_of_tags", "value": 1, "keep": 2}, "", `unknown field "keep"`},
		{"bad pattern", map[string]any{"method": "number_of_tags", "value": 1, "tagPattern": "(["}, "", "regular expression"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := FromConfig(tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("FromConfig = %v, %v; want an error containing %q", p, err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := p.Stored(); got != tc.want {
				t.Errorf("Stored() = %s, want %s", got, tc.want)
			}
		})
	}
}
