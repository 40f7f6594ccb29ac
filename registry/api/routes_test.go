package api

import (
	"testing"
	"time"
)

func TestParseRepoRoute(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want repoRoute
		ok   bool
	}{
		{"acme/app", repoRoute{ns: "acme", repo: "app"}, true},
		{"acme/team/app", repoRoute{ns: "acme", repo: "team/app"}, true},
		{"acme/app/tag", repoRoute{ns: "acme", repo: "app", sub: "tag"}, true},
		{"acme/app/tag/v1", repoRoute{ns: "acme", repo: "app", sub: "tag", name: "v1"}, true},
		{"acme/a/b/tag/v1", repoRoute{ns: "acme", repo: "a/b", sub: "tag", name: "v1"}, true},
		{"acme/app/permissions", repoRoute{ns: "acme", repo: "app", sub: "permissions"}, true},
		{"acme/app/permissions/user", repoRoute{ns: "acme", repo: "app", sub: "permissions", kind: "user"}, true},
		{"acme/app/permissions/team/devs", repoRoute{ns: "acme", repo: "app", sub: "permissions", kind: "team", name: "devs"}, true},
		{"acme/app/permissions/user/acme+bot", repoRoute{ns: "acme", repo: "app", sub: "permissions", kind: "user", name: "acme+bot"}, true},
		{"acme/app/changevisibility", repoRoute{ns: "acme", repo: "app", sub: "changevisibility"}, true},
		{"acme/app/logs", repoRoute{ns: "acme", repo: "app", sub: "logs"}, true},
		{"acme/logs", repoRoute{ns: "acme", repo: "logs"}, true}, // a repository named logs
		{"acme/app/notification", repoRoute{ns: "acme", repo: "app", sub: "notification"}, true},
		{"acme/team/app/notification/5d1a", repoRoute{ns: "acme", repo: "team/app", sub: "notification/item", name: "5d1a"}, true},
		{"acme/team/app/notification/5d1a/test", repoRoute{ns: "acme", repo: "team/app", sub: "notification/test", name: "5d1a"}, true},
		{"acme/a/b/autoprunepolicy", repoRoute{ns: "acme", repo: "a/b", sub: "autoprunepolicy"}, true},
		{"acme/a/b/autoprunepolicy/9f3c", repoRoute{ns: "acme", repo: "a/b", sub: "autoprunepolicy/item", name: "9f3c"}, true},
		{"acme/notification", repoRoute{ns: "acme", repo: "notification"}, true}, // a repository named notification
		{"acme", repoRoute{}, false},
		{"", repoRoute{}, false},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, ok := parseRepoRoute(tc.in)
			if ok != tc.ok || (ok && got != tc.want) {
				t.Fatalf("parseRepoRoute(%q) = %+v, %v; want %+v, %v", tc.in, got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestParseLogRange(t *testing.T) {
	now := time.Date(2026, 11, 23, 15, 4, 5, 0, time.UTC)
	day := func(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }
	for _, tc := range []struct {
		name, start, end string
		wantStart        time.Time
		wantEnd          time.Time
		ok               bool
	}{
		{"defaults: the last day", "", "", now.Add(-24 * time.Hour), now.Add(24 * time.Hour), true},
		{"one day, end included", "11/01/2026", "11/01/2026", day(2026, 11, 1), day(2026, 11, 2), true},
		{"a range", "10/01/2026", "10/31/2026", day(2026, 10, 1), day(2026, 11, 1), true},
		{"ISO dates refused", "2026-10-01", "", time.Time{}, time.Time{}, false},
		{"end before start", "11/05/2026", "11/01/2026", time.Time{}, time.Time{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, e, ok := parseLogRange(tc.start, tc.end, now)
			if ok != tc.ok || (ok && (!s.Equal(tc.wantStart) || !e.Equal(tc.wantEnd))) {
				t.Fatalf("= %v %v %v; want %v %v %v", s, e, ok, tc.wantStart, tc.wantEnd, tc.ok)
			}
		})
	}
}

func TestFormatDate(t *testing.T) {
	got := formatDate(time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("x", 3600)))
	if want := "Fri, 02 Jan 2026 02:04:05 -0000"; got != want {
		t.Fatalf("formatDate = %q, want %q", got, want)
	}
}
