package main

import (
	"context"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/postdesk/postdesk/internal/auth"
	"github.com/postdesk/postdesk/internal/store"
	"github.com/postdesk/postdesk/internal/store/storetest"
)

func TestAPIKeyListAndRevoke(t *testing.T) {
	for _, dialect := range storetest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			vars := dialectEnv(t, dialect)
			ctx := context.Background()
			if _, _, err := cli(t, vars, "correct horse battery\n", "user", "add", "--email", "ada@example.com"); err != nil {
				t.Fatal(err)
			}
			out, stderr, err := cli(t, vars, "", "apikey", "create", "--user", "ada@example.com", "--name", "ci", "--expires", "90d")
			if err != nil || !strings.HasPrefix(out, "pdk_") || !strings.Contains(stderr, "it stops working at ") {
				t.Fatalf("apikey create --expires: %v %q %q", err, out, stderr)
			}
			expiring := strings.TrimSpace(out)
			out, _, err = cli(t, vars, "", "apikey", "create", "--user", "ada@example.com", "--name", "forever")
			if err != nil {
				t.Fatal(err)
			}
			forever := strings.TrimSpace(out)
			for _, bad := range []string{"0d", "yesterday", "2001-01-01", "-5h", "99999999d", "4000-01-01"} {
				if _, _, err := cli(t, vars, "", "apikey", "create", "--user", "ada@example.com", "--expires", bad); err == nil || !strings.Contains(err.Error(), "--expires") {
					t.Errorf("--expires %s: err = %v", bad, err)
				}
			}
			out, _, err = cli(t, vars, "", "apikey", "list", "--user", "ada@example.com")
			if err != nil {
				t.Fatal(err)
			}
			want := time.Now().AddDate(0, 0, 90).UTC().Format("2006-01-02")
			if !regexp.MustCompile(`(?m)^1 +ci +`+regexp.QuoteMeta(expiring[:10])+`… .* `+want+`T`).MatchString(out) ||
				!regexp.MustCompile(`(?m)^2 +forever +`+regexp.QuoteMeta(forever[:10])+`… .* never$`).MatchString(out) {
				t.Fatalf("apikey list:\n%s", out)
			}

			db := openForTest(t, vars)
			svc := auth.New(db, 0)
			if _, _, err := svc.APIKey(ctx, expiring); err != nil {
				t.Fatalf("expiring key before its expiry: %v", err)
			}
			out, _, err = cli(t, vars, "", "apikey", "revoke", "--id", "1")
			if err != nil || !strings.Contains(out, "revoked key 1 ("+expiring[:10]+"…)") {
				t.Fatalf("apikey revoke: %v %q", err, out)
			}
			if _, _, err := svc.APIKey(ctx, expiring); err != auth.ErrInvalidCredentials {
				t.Fatalf("revoked key: err = %v", err)
			}
			if _, _, err := cli(t, vars, "", "apikey", "revoke", "--id", "1"); err == nil || !strings.Contains(err.Error(), "no key 1") {
				t.Fatalf("revoke twice: %v", err)
			}
			out, _, _ = cli(t, vars, "", "apikey", "list", "--user", "ada@example.com")
			if strings.Contains(out, "ci") || !strings.Contains(out, "forever") {
				t.Fatalf("list after revoke:\n%s", out)
			}
			if _, stderr, err := cli(t, vars, "", "apikey", "frobnicate"); err == nil || !strings.Contains(stderr, "apikey create|list|revoke") {
				t.Fatalf("unknown verb: %v %q", err, stderr)
			}
			if _, _, err := cli(t, vars, "", "apikey", "--help"); err != nil {
				t.Fatalf("--help: %v", err)
			}
		})
	}
}

func TestUserLockouts(t *testing.T) {
	for _, dialect := range storetest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			vars := dialectEnv(t, dialect)
			ctx := context.Background()
			if _, _, err := cli(t, vars, "", "migrate"); err != nil {
				t.Fatal(err)
			}
			out, _, err := cli(t, vars, "", "user", "lockouts")
			if err != nil || out != "no failed sign-ins\n" {
				t.Fatalf("no lockouts: %v %q", err, out)
			}
			db := openForTest(t, vars)
			// The failures as a sign-in flood leaves them (counting is auth's
			// test; this one is the admin's view).
			now := time.Now().UTC()
			err = db.Write(ctx, func(tx *store.Tx) error {
				for _, th := range []store.Throttle{
					{Kind: store.ThrottleAccount, Subject: "ada@example.com", Failures: 9, LastFailedAt: now},
					{Kind: store.ThrottleIP, Subject: "192.0.2.7", Failures: 2, LastFailedAt: now.Add(-time.Minute)},
				} {
					if err := tx.PutThrottle(ctx, th); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			out, _, err = cli(t, vars, "", "user", "lockouts")
			// Nine failures back off 32 s from the last one; the command
			// shows what is left of that when it runs (a loaded machine can
			// take seconds to start it), so any 1-32 s is right.
			wait := regexp.MustCompile(`(?m)^account +ada@example.com +9 +\S+ +in (\d+)s$`).FindStringSubmatch(out)
			if err != nil || wait == nil || !regexp.MustCompile(`(?m)^ip +192.0.2.7 +2 +\S+ +now$`).MatchString(out) {
				t.Fatalf("user lockouts: %v\n%s", err, out)
			}
			if n, _ := strconv.Atoi(wait[1]); n < 1 || n > 32 {
				t.Fatalf("user lockouts: ada@example.com's wait is %ss, want 1-32 s (32 s from the 9th failure)\n%s", wait[1], out)
			}
			if _, _, err := cli(t, vars, "", "user", "unlock"); err == nil {
				t.Fatal("unlock without --email or --ip")
			}
			out, _, err = cli(t, vars, "", "user", "unlock", "--email", "Ada@Example.com")
			if err != nil || !strings.Contains(out, "cleared the failed sign-ins of Ada@Example.com") {
				t.Fatalf("unlock --email: %v %q", err, out)
			}
			out, _, err = cli(t, vars, "", "user", "unlock", "--ip", "::ffff:192.0.2.7")
			if err != nil || !strings.Contains(out, "cleared the failed sign-ins of 192.0.2.7") {
				t.Fatalf("unlock --ip: %v %q", err, out)
			}
			out, _, _ = cli(t, vars, "", "user", "unlock", "--ip", "192.0.2.7")
			if !strings.Contains(out, "no failed sign-ins recorded for 192.0.2.7") {
				t.Fatalf("unlock twice: %q", out)
			}
			if out, _, _ := cli(t, vars, "", "user", "lockouts"); out != "no failed sign-ins\n" {
				t.Fatalf("after unlock:\n%s", out)
			}
		})
	}
}
