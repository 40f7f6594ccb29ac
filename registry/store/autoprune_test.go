package store

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"
)

func TestAutoPrunePolicies(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		db := openMigrated(t, b)
		org := mustUser(t, db, "acme", true)
		other := mustUser(t, db, "other", true)
		const p1, p2 = `{"method":"number_of_tags","value":3}`, `{"method":"creation_date","value":"7d"}`

		id1, err := db.CreateNamespaceAutoPrunePolicy(ctx, org.ID, p1)
		if err != nil {
			t.Fatal(err)
		}
		// The policy and its queued task are written together.
		if status, last, err := db.AutoPruneTaskStatus(ctx, org.ID); err != nil || status != AutoPruneQueued || last != nil {
			t.Fatalf("task after create: %q %v %v", status, last, err)
		}
		if _, err := db.CreateNamespaceAutoPrunePolicy(ctx, org.ID, p1); !errors.Is(err, ErrExists) {
			t.Fatalf("duplicate policy: %v, want ErrExists", err)
		}
		// The same policy in another namespace is no duplicate.
		if _, err := db.CreateNamespaceAutoPrunePolicy(ctx, other.ID, p1); err != nil {
			t.Fatal(err)
		}
		id2, err := db.CreateNamespaceAutoPrunePolicy(ctx, org.ID, p2)
		if err != nil {
			t.Fatal(err)
		}
		got, err := db.NamespaceAutoPrunePolicies(ctx, org.ID)
		if err != nil || len(got) != 2 || got[0].UUID != id1 || got[1].UUID != id2 || got[1].Policy != p2 {
			t.Fatalf("policies = %+v, %v", got, err)
		}

		tests := []struct {
			name    string
			ns      int64
			id, pol string
			want    error
		}{
			{"to a duplicate", org.ID, id2, p1, ErrExists},
			{"unknown uuid", org.ID, "no-such-uuid", p2, ErrNotFound},
			{"another namespace's policy", other.ID, id2, p2, ErrNotFound},
			{"unchanged", org.ID, id2, p2, nil},
		}
		for _, tc := range tests {
			if err := db.UpdateNamespaceAutoPrunePolicy(ctx, tc.ns, tc.id, tc.pol); !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
				t.Errorf("update %s: %v, want %v", tc.name, err, tc.want)
			}
		}
		if err := db.DeleteNamespaceAutoPrunePolicy(ctx, other.ID, id1); !errors.Is(err, ErrNotFound) {
			t.Errorf("delete through another namespace: %v", err)
		}
		if err := db.DeleteNamespaceAutoPrunePolicy(ctx, org.ID, id1); err != nil {
			t.Fatal(err)
		}
		if err := db.DeleteNamespaceAutoPrunePolicy(ctx, org.ID, id1); !errors.Is(err, ErrNotFound) {
			t.Errorf("second delete: %v", err)
		}
		if got, _ := db.NamespaceAutoPrunePolicies(ctx, org.ID); len(got) != 1 || got[0].UUID != id2 {
			t.Errorf("after delete: %+v", got)
		}
	})
}

func TestClaimAutoPruneTask(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		db := openMigrated(t, b)
		clk := freezeClock(db)
		a := mustUser(t, db, "alpha", true)
		bb := mustUser(t, db, "beta", true)
		gone := mustUser(t, db, "gone", true)
		for _, ns := range []*User{a, bb, gone} {
			if _, err := db.CreateNamespaceAutoPrunePolicy(ctx, ns.ID, `{"method":"number_of_tags","value":1}`); err != nil {
				t.Fatal(err)
			}
		}
		// A policy deleted while its task exists: the claim removes the task.
		pols, _ := db.NamespaceAutoPrunePolicies(ctx, gone.ID)
		if err := db.DeleteNamespaceAutoPrunePolicy(ctx, gone.ID, pols[0].UUID); err != nil {
			t.Fatal(err)
		}
		claimed := map[string]bool{}
		for range 3 {
			task, err := db.ClaimAutoPruneTask(ctx, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			if task == nil {
				break
			}
			if claimed[task.Namespace] || len(task.Policies) != 1 {
				t.Fatalf("claimed %s twice or without its policy: %+v", task.Namespace, task)
			}
			claimed[task.Namespace] = true
			if err := db.FinishAutoPruneTask(ctx, task.ID, AutoPruneSuccess); err != nil {
				t.Fatal(err)
			}
		}
		if len(claimed) != 2 || !claimed["alpha"] || !claimed["beta"] {
			t.Fatalf("claimed %v, want alpha and beta", claimed)
		}
		if _, _, err := db.AutoPruneTaskStatus(ctx, gone.ID); !errors.Is(err, ErrNotFound) {
			t.Errorf("task of a namespace without policies: %v, want it deleted", err)
		}
		status, last, err := db.AutoPruneTaskStatus(ctx, a.ID)
		if err != nil || status != AutoPruneSuccess || last == nil || *last != clk.Now().UnixMilli() {
			t.Errorf("alpha's task: %q %v %v", status, last, err)
		}
		// Nothing is due again before the minimum interval has passed.
		clk.Advance(59 * time.Minute)
		if task, err := db.ClaimAutoPruneTask(ctx, time.Hour); task != nil || err != nil {
			t.Fatalf("claim within the interval: %+v %v", task, err)
		}
		clk.Advance(2 * time.Minute)
		task, err := db.ClaimAutoPruneTask(ctx, time.Hour)
		if err != nil || task == nil || task.Namespace != "alpha" {
			t.Fatalf("claim after the interval: %+v %v, want alpha (the oldest run)", task, err)
		}
		// A disabled namespace is not pruned.
		if err := db.SetUserEnabled(ctx, bb.ID, false); err != nil {
			t.Fatal(err)
		}
		if task, err := db.ClaimAutoPruneTask(ctx, time.Hour); task != nil || err != nil {
			t.Fatalf("claim of a disabled namespace: %+v %v", task, err)
		}
	})
}

func TestPruneTag(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		db := openMigrated(t, b)
		org := mustUser(t, db, "acme", true)
		repo := mustRepo(t, db, org, "app", false)
		for i, tag := range []string{"old", "mid", "new"} {
			mustPut(t, db, image(t, db, repo.ID, tag, tag))
			mustExec(t, db, `UPDATE tag SET lifetime_start_ms = ? WHERE repository_id = ? AND name = ?`, int64(1000+i), repo.ID, tag)
		}
		tags, err := db.PrunableTags(ctx, repo.ID)
		if err != nil || len(tags) != 3 || tags[0].Name != "new" || tags[2].Name != "old" {
			t.Fatalf("prunable tags = %+v, %v (want newest first)", tags, err)
		}
		e := LogEntry{Kind: "autoprune_tag_delete", AccountID: org.ID, RepositoryID: &repo.ID, Metadata: map[string]any{"tag": "old"}}
		if ok, err := db.PruneTag(ctx, &tags[2], e); !ok || err != nil {
			t.Fatalf("PruneTag: %v %v", ok, err)
		}
		// The second attempt finds the row ended and writes nothing.
		if ok, err := db.PruneTag(ctx, &tags[2], e); ok || err != nil {
			t.Fatalf("second PruneTag: %v %v", ok, err)
		}
		if names, _ := db.ListTags(ctx, repo.ID, "", 0); len(names) != 2 {
			t.Errorf("tags after prune: %v", names)
		}
		if n := count(t, db, `SELECT COUNT(*) FROM logentry3 l JOIN logentrykind k ON k.id = l.kind_id WHERE k.name = 'autoprune_tag_delete'`); n != 1 {
			t.Errorf("%d audit rows, want 1", n)
		}
		// Pruned like a DELETE: the time machine can still restore it.
		if err := db.RestoreTag(ctx, repo.ID, "old", tags[2].ManifestDigest); err != nil {
			t.Errorf("restore a pruned tag: %v", err)
		}
		// Immutable tags are never candidates.
		mustExec(t, db, `UPDATE tag SET immutable = true WHERE repository_id = ? AND name = 'mid'`, repo.ID)
		if tags, _ := db.PrunableTags(ctx, repo.ID); len(tags) != 2 {
			t.Errorf("prunable with an immutable tag: %+v", tags)
		}
	})
}

func TestRepositoryAutoPrunePolicies(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		db := openMigrated(t, b)
		freezeClock(db)
		org := mustUser(t, db, "acme", true)
		app := mustRepo(t, db, org, "app", false)
		web := mustRepo(t, db, org, "web", false)
		const pol = `{"method":"number_of_tags","value":3}`
		id, err := db.CreateRepositoryAutoPrunePolicy(ctx, org.ID, app.ID, pol)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.CreateRepositoryAutoPrunePolicy(ctx, org.ID, app.ID, pol); !errors.Is(err, ErrExists) {
			t.Fatalf("duplicate: %v", err)
		}
		if _, err := db.CreateRepositoryAutoPrunePolicy(ctx, org.ID, web.ID, pol); err != nil {
			t.Fatalf("same policy on another repository: %v", err)
		}
		if got, err := db.RepositoryAutoPrunePolicies(ctx, app.ID); err != nil || len(got) != 1 || got[0].UUID != id || got[0].RepositoryID != app.ID {
			t.Fatalf("app's policies %+v %v", got, err)
		}
		if err := db.UpdateRepositoryAutoPrunePolicy(ctx, org.ID, web.ID, id, pol); !errors.Is(err, ErrNotFound) {
			t.Errorf("update through another repository: %v", err)
		}
		if err := db.UpdateRepositoryAutoPrunePolicy(ctx, org.ID, app.ID, id, `{"method":"number_of_tags","value":4}`); err != nil {
			t.Fatal(err)
		}
		// A namespace with repository policies only has a task to run.
		task, err := db.ClaimAutoPruneTask(ctx, time.Hour)
		if err != nil || task == nil || len(task.Policies) != 0 || len(task.RepositoryPolicies) != 2 ||
			task.RepositoryPolicies[0].Repository != "app" || task.RepositoryPolicies[0].Policy != `{"method":"number_of_tags","value":4}` {
			t.Fatalf("claim: %+v %v", task, err)
		}
		for _, r := range []*Repository{app, web} {
			pols, _ := db.RepositoryAutoPrunePolicies(ctx, r.ID)
			if err := db.DeleteRepositoryAutoPrunePolicy(ctx, r.ID, pols[0].UUID); err != nil {
				t.Fatal(err)
			}
		}
		mustExec(t, db, `UPDATE autoprunetaskstatus SET last_ran_ms = NULL`)
		if task, err := db.ClaimAutoPruneTask(ctx, time.Hour); task != nil || err != nil {
			t.Fatalf("claim without any policy: %+v %v", task, err)
		}
		if _, _, err := db.AutoPruneTaskStatus(ctx, org.ID); !errors.Is(err, ErrNotFound) {
			t.Errorf("task without policies: %v, want deleted", err)
		}
	})
}

// TestRegistryAutoPrune: the registry-wide pass is claimed by one replica
// at a time, is due again only after its period, and a hold that outlives
// its timeout is taken over (the stale claim then cannot finish).
func TestRegistryAutoPrune(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		db := openMigrated(t, b)
		clk := freezeClock(db)

		first, err := db.ClaimRegistryAutoPrune(ctx, time.Hour)
		if err != nil || first == "" {
			t.Fatalf("first claim = %q, %v", first, err)
		}
		if again, err := db.ClaimRegistryAutoPrune(ctx, time.Hour); err != nil || again != "" {
			t.Fatalf("claim while held = %q, %v; want none", again, err)
		}
		if err := db.FinishRegistryAutoPrune(ctx, first, 24*time.Hour); err != nil {
			t.Fatalf("FinishRegistryAutoPrune: %v", err)
		}
		clk.Advance(23 * time.Hour)
		if again, err := db.ClaimRegistryAutoPrune(ctx, time.Hour); err != nil || again != "" {
			t.Fatalf("claim before the period ended = %q, %v; want none", again, err)
		}
		clk.Advance(2 * time.Hour)
		second, err := db.ClaimRegistryAutoPrune(ctx, time.Hour)
		if err != nil || second == "" {
			t.Fatalf("claim after the period = %q, %v", second, err)
		}
		// The holder stalls past the timeout: another replica takes over.
		clk.Advance(61 * time.Minute)
		third, err := db.ClaimRegistryAutoPrune(ctx, time.Hour)
		if err != nil || third == "" {
			t.Fatalf("claim after the hold expired = %q, %v", third, err)
		}
		if err := db.FinishRegistryAutoPrune(ctx, second, 24*time.Hour); !errors.Is(err, ErrNotFound) {
			t.Errorf("finish with the stale claim = %v, want ErrNotFound", err)
		}
		if err := db.FinishRegistryAutoPrune(ctx, third, 24*time.Hour); err != nil {
			t.Fatal(err)
		}
		if n := count(t, db, `SELECT COUNT(*) FROM queueitem WHERE queue_name = ?`, registryAutoPruneQueue); n != 1 {
			t.Errorf("%d rows for the registry-wide pass, want 1", n)
		}
	})
}

// TestActiveNamespaces pages through users and organisations, leaving out
// robots and disabled users.
func TestActiveNamespaces(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		db := openMigrated(t, b)
		alice := mustUser(t, db, "alice", false)
		mustUser(t, db, "acme", true)
		bob := mustUser(t, db, "bob", false)
		mustUser(t, db, "zeta", true)
		if _, err := db.CreateRobot(ctx, alice.ID, "bot", "", "token"); err != nil {
			t.Fatal(err)
		}
		if err := db.SetUserEnabled(ctx, bob.ID, false); err != nil {
			t.Fatal(err)
		}
		var names []string
		var after int64
		for {
			page, err := db.ActiveNamespaces(ctx, after, 2)
			if err != nil {
				t.Fatal(err)
			}
			for _, u := range page {
				names = append(names, u.Username)
				after = u.ID
			}
			if len(page) < 2 {
				break
			}
		}
		if want := []string{"alice", "acme", "zeta"}; !slices.Equal(names, want) {
			t.Errorf("active namespaces %v, want %v", names, want)
		}
	})
}
