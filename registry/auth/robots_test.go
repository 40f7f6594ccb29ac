package auth

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/quayctl/quayctl/registry/encfield"
)

// TestRobotAndAppTokenLogins: robots log in with their token, `$app` with
// an app-specific token; everything else about them is refused.
func TestRobotAndAppTokenLogins(t *testing.T) {
	f := newFixture(t)
	a := f.auth()
	ctx := context.Background()
	robot, robotTok, err := a.CreateRobot(ctx, f.users["acme"].ID, "builder", "CI")
	if err != nil {
		t.Fatal(err)
	}
	// The stored token is Quay's encrypted field, not the token.
	stored, err := f.st.RobotToken(ctx, robot.ID)
	if err != nil || !strings.HasPrefix(stored, "v0$$") || strings.Contains(stored, robotTok) {
		t.Fatalf("stored token %q, %v: want an encrypted v0$$ field", stored, err)
	}
	if plain, err := encfield.Decrypt(testEncryptionKey(t), stored); err != nil || plain != robotTok {
		t.Fatalf("decrypt stored token = %q, %v", plain, err)
	}
	if len(robotTok) != 64 || strings.Trim(robotTok, quayTokenAlphabet) != "" {
		t.Fatalf("robot token %q is not Quay's shape (64 of [A-Z0-9])", robotTok)
	}
	app, err := a.CreateAppToken(ctx, f.users["alice"], "laptop", nil)
	if err != nil {
		t.Fatal(err)
	}
	past := f.clock.Now().Add(-time.Hour)
	expired, err := a.CreateAppToken(ctx, f.users["alice"], "old", &past)
	if err != nil {
		t.Fatal(err)
	}
	carolApp, err := a.CreateAppToken(ctx, f.users["carol"], "disabled owner", nil)
	if err != nil {
		t.Fatal(err)
	}
	_, disabledTok, err := a.CreateRobot(ctx, f.users["acme"].ID, "off", "")
	if err != nil {
		t.Fatal(err)
	}
	f.exec(`UPDATE "user" SET enabled = ? WHERE username = ?`, false, "acme+off")
	_, carolTok, err := a.CreateRobot(ctx, f.users["carol"].ID, "bot", "")
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name, user, pw string
		wantUser       string
		wantKind       string // principal kind on success
		wantReason     error
	}{
		{name: "robot", user: "acme+builder", pw: robotTok, wantUser: "acme+builder", wantKind: KindRobot},
		{name: "robot wrong token", user: "acme+builder", pw: robotTok[:63] + "Z", wantReason: ErrInvalidCredentials},
		{name: "robot empty token", user: "acme+builder", pw: "", wantReason: ErrInvalidCredentials},
		{name: "robot token of another robot", user: "acme+off", pw: robotTok, wantReason: ErrInvalidCredentials},
		{name: "disabled robot", user: "acme+off", pw: disabledTok, wantReason: ErrUserDisabled},
		{name: "robot of a disabled user", user: "carol+bot", pw: carolTok, wantReason: ErrRobotOwnerDisabled},
		{name: "app token", user: "$app", pw: app.Token, wantUser: "alice", wantKind: KindUser},
		{name: "app token tampered", user: "$app", pw: app.Token[:119] + "!", wantReason: ErrInvalidCredentials},
		{name: "app token expired", user: "$app", pw: expired.Token, wantReason: ErrTokenExpiredCredential},
		{name: "app token of a disabled user", user: "$app", pw: carolApp.Token, wantReason: ErrUserDisabled},
		{name: "app token as a password", user: "alice", pw: app.Token, wantReason: ErrInvalidCredentials},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := a.CheckBasic(ctx, tc.user, tc.pw)
			if tc.wantReason != nil {
				if p != nil || !errors.Is(err, ErrInvalidCredentials) || !errors.Is(err, tc.wantReason) {
					t.Fatalf("CheckBasic = %v, %v; want refusal %v", p, err, tc.wantReason)
				}
				if strings.Contains(err.Error(), tc.pw) && tc.pw != "" {
					t.Fatalf("error reveals the secret: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.Username() != tc.wantUser || p.Kind != tc.wantKind {
				t.Fatalf("principal %v, want %s %s", p, tc.wantKind, tc.wantUser)
			}
		})
	}

	// Regenerating invalidates the old token.
	newTok, err := a.RegenerateRobotToken(ctx, robot.ID)
	if err != nil || newTok == robotTok {
		t.Fatalf("regenerate = %q, %v", newTok, err)
	}
	if _, err := a.CheckBasic(ctx, "acme+builder", robotTok); !errors.Is(err, ErrInvalidCredentials) {
		t.Fatalf("old token still accepted: %v", err)
	}
	if got, err := a.RobotToken(ctx, robot.ID); err != nil || got != newTok {
		t.Fatalf("RobotToken = %q, %v", got, err)
	}
	// Without the key, nothing can be created or checked.
	noKey := f.auth(func(o *Options) { o.EncryptionKey = nil })
	if _, _, err := noKey.CreateRobot(ctx, f.users["acme"].ID, "nokey", ""); !errors.Is(err, ErrNoEncryptionKey) {
		t.Fatalf("CreateRobot without key: %v", err)
	}
	if _, err := noKey.CheckBasic(ctx, "acme+builder", newTok); !errors.Is(err, ErrInvalidCredentials) {
		t.Fatalf("robot login without key: %v", err)
	}
}
