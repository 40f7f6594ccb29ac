package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

func TestRepoNotificationCRUD(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		db := openMigrated(t, b)
		ns := mustUser(t, db, "alice", false)
		repo := mustRepo(t, db, ns, "app", false)

		bad := []struct {
			name  string
			in    NewRepoNotification
			field string
		}{
			{"unknown event", NewRepoNotification{RepositoryID: repo.ID, Event: "repo_pull", Method: "webhook"}, "event"},
			{"unknown method", NewRepoNotification{RepositoryID: repo.ID, Event: "repo_push", Method: "pager"}, "method"},
		}
		for _, tc := range bad {
			_, err := db.CreateRepoNotification(ctx, tc.in)
			var inv InvalidInputError
			if !errors.As(err, &inv) || inv.Field != tc.field {
				t.Errorf("%s: err = %v, want InvalidInputError on %s", tc.name, err, tc.field)
			}
		}

		n, err := db.CreateRepoNotification(ctx, NewRepoNotification{RepositoryID: repo.ID, Event: "repo_push", Method: "webhook",
			Title: "ci", ConfigJSON: `{"url":"http://example.com/hook"}`})
		if err != nil {
			t.Fatal(err)
		}
		if n.Namespace != "alice" || n.Repository != "app" || n.Event != "repo_push" || n.Method != "webhook" ||
			n.Title != "ci" || n.EventConfigJSON != "{}" || n.NumberOfFailures != 0 || n.UUID == "" {
			t.Errorf("created = %+v", n)
		}
		if _, err := db.CreateRepoNotification(ctx, NewRepoNotification{RepositoryID: repo.ID, Event: "quota_warning", Method: "slack"}); err != nil {
			t.Fatal(err)
		}
		for event, want := range map[string]int{"": 2, "repo_push": 1, "quota_error": 0} {
			got, err := db.RepoNotifications(ctx, repo.ID, event)
			if err != nil || len(got) != want {
				t.Errorf("RepoNotifications(%q) = %d, %v; want %d", event, len(got), err, want)
			}
		}
		for i, ok := range []bool{false, false, true, false} {
			got, err := db.RecordNotificationResult(ctx, n.UUID, ok)
			want := []int{1, 2, 0, 1}[i]
			if err != nil || got != want {
				t.Errorf("result %d: failures = %d, %v; want %d", i, got, err, want)
			}
		}
		if err := db.ResetRepoNotificationFailures(ctx, n.UUID); err != nil {
			t.Fatal(err)
		}
		if got, _ := db.RepoNotificationByUUID(ctx, n.UUID); got.NumberOfFailures != 0 || got.LastRanMs == nil {
			t.Errorf("after reset = %+v", got)
		}
		if err := db.DeleteRepoNotification(ctx, n.UUID); err != nil {
			t.Fatal(err)
		}
		for name, err := range map[string]error{
			"get":    func() error { _, err := db.RepoNotificationByUUID(ctx, n.UUID); return err }(),
			"delete": db.DeleteRepoNotification(ctx, n.UUID),
			"reset":  db.ResetRepoNotificationFailures(ctx, n.UUID),
		} {
			if !errors.Is(err, ErrNotFound) {
				t.Errorf("%s after delete: %v, want ErrNotFound", name, err)
			}
		}
	})
}

func TestNotificationQueue(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		db := openMigrated(t, b)
		clk := freezeClock(db)
		if err := db.EnqueueNotifications(ctx, "repositorygc/x/", []string{"{}"}, 5); err == nil {
			t.Error("enqueue outside the notification queue: no error")
		}
		if err := db.EnqueueNotifications(ctx, "notification/alice/app/repo_push/", []string{`{"a":1}`, `{"a":2}`}, 2); err != nil {
			t.Fatal(err)
		}
		// Another queue's items are never claimed here.
		mustExec(t, db, `INSERT INTO queueitem (queue_name, body, available_after, available, retries_remaining, state_id)
			VALUES ('repositorygc/alice/1/', '{}', ?, true, 5, 'other')`, db.d.ts(clk.Now()))

		it1, err := db.ClaimNotification(ctx, time.Minute)
		if err != nil || it1 == nil || it1.Body != `{"a":1}` || it1.RetriesRemaining != 1 {
			t.Fatalf("claim 1 = %+v, %v", it1, err)
		}
		it2, _ := db.ClaimNotification(ctx, time.Minute)
		if it2 == nil || it2.Body != `{"a":2}` {
			t.Fatalf("claim 2 = %+v", it2)
		}
		if it, _ := db.ClaimNotification(ctx, time.Minute); it != nil {
			t.Fatalf("claim 3 = %+v, want none (both leased)", it)
		}
		// Retry later: not before its time.
		if err := db.RetryNotification(ctx, it1, clk.Now().Add(30*time.Second)); err != nil {
			t.Fatal(err)
		}
		if it, _ := db.ClaimNotification(ctx, time.Minute); it != nil {
			t.Fatalf("claimed before available_after: %+v", it)
		}
		clk.Advance(31 * time.Second)
		again, _ := db.ClaimNotification(ctx, time.Minute)
		if again == nil || again.ID != it1.ID || again.RetriesRemaining != 0 {
			t.Fatalf("claim after retry = %+v", again)
		}
		// The stale claim cannot complete the item any more.
		if ok, err := db.CompleteNotification(ctx, it1); ok || err != nil {
			t.Errorf("stale complete = %v, %v", ok, err)
		}
		if ok, err := db.CompleteNotification(ctx, again); !ok || err != nil {
			t.Errorf("complete = %v, %v", ok, err)
		}
		// it2's lease expires: it is claimable again (one try left).
		clk.Advance(2 * time.Minute)
		if it, _ := db.ClaimNotification(ctx, time.Minute); it == nil || it.ID != it2.ID || it.RetriesRemaining != 0 {
			t.Fatalf("claim after expired lease = %+v", it)
		}
		if n, _ := db.PendingNotifications(ctx); n != 0 {
			t.Errorf("pending = %d, want 0 (no tries left)", n)
		}
	})
}

// TestNotificationQueueExactlyOnce: many claimers on one database take
// each item once.
func TestNotificationQueueExactlyOnce(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		uri := b.uri(t)
		db1 := openURI(t, uri)
		if err := db1.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		db2 := openURI(t, uri)
		const items = 40
		var bodies []string
		for i := 0; i < items; i++ {
			bodies = append(bodies, fmt.Sprintf(`{"i":%d}`, i))
		}
		if err := db1.EnqueueNotifications(ctx, "notification/a/b/repo_push/", bodies, 5); err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		seen := map[string]int{}
		var wg sync.WaitGroup
		for w := 0; w < 4; w++ {
			db := []*DB{db1, db2}[w%2]
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					it, err := db.ClaimNotification(ctx, time.Minute)
					if err != nil {
						t.Error(err)
						return
					}
					if it == nil {
						return
					}
					if ok, err := db.CompleteNotification(ctx, it); !ok || err != nil {
						t.Errorf("complete: %v %v", ok, err)
					}
					mu.Lock()
					seen[it.Body]++
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if len(seen) != items {
			t.Errorf("delivered %d distinct items, want %d", len(seen), items)
		}
		for body, n := range seen {
			if n != 1 {
				t.Errorf("%s claimed %d times", body, n)
			}
		}
	})
}

func TestUserNotifications(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		db := openMigrated(t, b)
		clk := freezeClock(db)
		alice := mustUser(t, db, "alice", false)
		bob := mustUser(t, db, "bob", false)
		org := mustUser(t, db, "acme", true)
		mustTeam(t, db, org, "admins", TeamRoleAdmin, alice)
		mustTeam(t, db, org, "devs", TeamRoleMember, bob)

		if err := db.CreateUserNotification(ctx, "no_such_kind", alice.ID, "{}"); err == nil {
			t.Error("unknown kind: no error")
		}
		if err := db.CreateUserNotification(ctx, "repo_push", alice.ID, `{"repository":"alice/app"}`); err != nil {
			t.Fatal(err)
		}
		clk.Advance(time.Second)
		if err := db.CreateUserNotification(ctx, "quota_warning", org.ID, `{"namespace":"acme"}`); err != nil {
			t.Fatal(err)
		}
		got, err := db.UserNotifications(ctx, alice.ID, "", false)
		if err != nil || len(got) != 2 || got[0].Kind != "quota_warning" || !got[0].TargetIsOrg || got[1].Kind != "repo_push" {
			t.Fatalf("alice sees %+v, %v", got, err)
		}
		if got, _ := db.UserNotifications(ctx, bob.ID, "", false); len(got) != 0 {
			t.Errorf("bob (not an org admin) sees %+v", got)
		}
		if err := db.SetNotificationDismissed(ctx, got[1].ID, true); err != nil {
			t.Fatal(err)
		}
		if open, _ := db.UserNotifications(ctx, alice.ID, "", false); len(open) != 1 {
			t.Errorf("after dismiss: %d open, want 1", len(open))
		}
		if one, _ := db.UserNotifications(ctx, alice.ID, got[1].UUID, true); len(one) != 1 || !one[0].Dismissed {
			t.Errorf("by uuid with dismissed = %+v", one)
		}
		if err := db.SetNotificationDismissed(ctx, 99999, true); !errors.Is(err, ErrNotFound) {
			t.Errorf("dismiss missing: %v", err)
		}
	})
}
