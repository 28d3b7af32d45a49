package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/postdesk/postdesk/internal/store"
	"github.com/postdesk/postdesk/internal/store/storetest"
)

// cli runs a postdesk command in-process with the given environment.
func cli(t *testing.T, vars map[string]string, stdin string, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	e := env{stdin: strings.NewReader(stdin), stdout: &out, stderr: &errOut, getenv: func(k string) string { return vars[k] }}
	err := run(context.Background(), e, args)
	return out.String(), errOut.String(), err
}

func dialectEnv(t *testing.T, dialect string) map[string]string {
	vars := map[string]string{"POSTDESK_DATA": t.TempDir(), "POSTDESK_LOG_LEVEL": "warn"}
	if dialect == "postgres" {
		vars["POSTDESK_DATABASE_URL"] = storetest.NewPostgresDatabase(t)
	}
	return vars
}

// The done-when of the core issue: importing a varied folder of real-world
// mail gives the right tickets, and importing it again changes nothing.
func TestImportTwiceChangesNothing(t *testing.T) {
	for _, dialect := range storetest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			vars := dialectEnv(t, dialect)
			dir := "../../internal/ingest/testdata/inbox"
			out, stderr, err := cli(t, vars, "", "import", "--mailbox", "Support@Example.com", dir)
			if err != nil {
				t.Fatalf("import: %v\n%s\n%s", err, out, stderr)
			}
			for _, line := range []string{
				"created mailbox support@example.com",
				"01_outlook_new.eml: new ticket 1",
				"03_gmail_reply_to_outlook.eml: joined ticket 1",
				"04_apple_mail_subject_ref.eml: joined ticket 2 (subject names [#2])",
				"07_out_of_office.eml: automatic reply, attached to ticket 1 as an event",
				"08_bounce_unknown.eml: ignored: bounce",
				"09_loop_from_support.eml: ignored: sent from our own address support@example.com (loop protection)",
				"12_auto_reply_unknown.eml: ignored: automatic reply",
				"13_thread.mbox#1: new ticket 7",
				"13_thread.mbox#2: joined ticket 7",
				"done: 7 new tickets, 3 joined, 1 attached to tickets, 3 ignored, 0 duplicates, 0 quarantined, 0 failed",
			} {
				if !strings.Contains(out, line) {
					t.Errorf("import output lacks %q:\n%s", line, out)
				}
			}
			out, _, err = cli(t, vars, "", "import", "--mailbox", "support@example.com", dir)
			if err != nil {
				t.Fatalf("second import: %v\n%s", err, out)
			}
			if !strings.Contains(out, "done: 0 new tickets, 0 joined, 0 attached to tickets, 0 ignored, 14 duplicates, 0 quarantined, 0 failed") {
				t.Errorf("second import changed something:\n%s", out)
			}
		})
	}
}

func TestUserAndAPIKey(t *testing.T) {
	vars := dialectEnv(t, "sqlite")
	out, _, err := cli(t, vars, "", "user", "add", "--email", "Ada@Example.com", "--role", "admin")
	if err != nil || !strings.Contains(out, "added admin ada@example.com") || !strings.Contains(out, "password: ") {
		t.Fatalf("user add (generated password): %v\n%s", err, out)
	}
	out, _, err = cli(t, vars, "correct horse battery\n", "user", "add", "--email", "bob@example.com")
	if err != nil || strings.Contains(out, "password:") {
		t.Fatalf("user add (password from stdin): %v\n%s", err, out)
	}
	if _, _, err := cli(t, vars, "", "user", "add", "--email", "ada@example.com"); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("duplicate user: %v", err)
	}
	if _, _, err := cli(t, vars, "", "user", "add", "--email", "c@example.com", "--role", "owner"); err == nil {
		t.Fatal("bad role accepted")
	}
	out, _, err = cli(t, vars, "", "apikey", "create", "--user", "ada@example.com")
	if err != nil || !strings.HasPrefix(out, "pdk_") {
		t.Fatalf("apikey create: %v %q", err, out)
	}
	if _, _, err := cli(t, vars, "", "apikey", "create", "--user", "nobody@example.com"); err == nil {
		t.Fatal("key for a missing user")
	}
	// Only the key's hash is stored.
	db := openForTest(t, vars)
	if _, _, err := db.APIKeyByHash(context.Background(), strings.TrimSpace(out)); err == nil {
		t.Fatal("the plain key is stored")
	}
}

func TestBadConfigurationIsAClearError(t *testing.T) {
	_, _, err := cli(t, map[string]string{"POSTDESK_DATABASE_URL": "mysql://x"}, "", "migrate")
	if err == nil || !strings.Contains(err.Error(), "POSTDESK_DATABASE_URL") {
		t.Fatalf("err = %v", err)
	}
	if _, _, err := cli(t, nil, "", "frobnicate"); err == nil {
		t.Fatal("unknown command accepted")
	}
	out, _, err := cli(t, nil, "", "version")
	if err != nil || !strings.HasPrefix(out, "postdesk ") {
		t.Fatalf("version: %v %q", err, out)
	}
}

func openForTest(t *testing.T, vars map[string]string) *store.DB {
	t.Helper()
	db, err := store.Open(context.Background(), store.Config{DataDir: vars["POSTDESK_DATA"], DatabaseURL: vars["POSTDESK_DATABASE_URL"]})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// A negative interval is refused by name, before anything starts (it was
// taken silently as "no sample mail").
func TestDemoRefusesANegativeMailInterval(t *testing.T) {
	// Bounded: were the check lost, the demo would run until stopped.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out, errOut bytes.Buffer
	e := env{stdin: strings.NewReader(""), stdout: &out, stderr: &errOut, getenv: func(string) string { return "" }}
	err := run(ctx, e, []string{"demo", "--listen", "127.0.0.1:0", "--mail-every", "-5s"})
	if err == nil || !strings.Contains(err.Error(), "--mail-every -5s: must be 0") {
		t.Fatalf("demo --mail-every -5s: %v", err)
	}
}

// The demo's --listen is checked by name too.
func TestDemoRefusesABadListenPort(t *testing.T) {
	_, _, err := cli(t, nil, "", "demo", "--listen", "127.0.0.1:99999")
	if err == nil || !strings.Contains(err.Error(), "--listen 127.0.0.1:99999: port \"99999\" must be a number from 0 to 65535") {
		t.Fatalf("demo --listen 127.0.0.1:99999: %v", err)
	}
}

// A command that works on an existing database refuses a data folder
// without one (a mistyped --data) instead of creating an empty database
// and reporting nothing; the commands that set Postdesk up create it.
func TestMistypedDataFolderIsRefused(t *testing.T) {
	dir := t.TempDir()
	vars := map[string]string{"POSTDESK_DATA": dir, "POSTDESK_LOG_LEVEL": "warn"}
	for _, args := range [][]string{{"reindex"}, {"mailbox", "list"}, {"user", "list"}, {"apikey", "list", "--user", "a@example.com"}} {
		_, _, err := cli(t, vars, "", args...)
		if err == nil || !strings.Contains(err.Error(), "there is no Postdesk database in the data folder "+dir) {
			t.Errorf("%v on an empty folder: %v", args, err)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("the refused commands left %d files in the folder", len(entries))
	}
	if _, _, err := cli(t, vars, "", "migrate"); err != nil {
		t.Fatal(err)
	}
	if out, _, err := cli(t, vars, "", "mailbox", "list"); err != nil {
		t.Errorf("mailbox list after migrate: %v %q", err, out)
	}
}

// An import of a folder without files says so and fails, rather than
// reporting zero of everything as done.
func TestImportOfAnEmptyFolderFails(t *testing.T) {
	vars := map[string]string{"POSTDESK_DATA": t.TempDir(), "POSTDESK_LOG_LEVEL": "warn"}
	empty := t.TempDir()
	if _, _, err := cli(t, vars, "", "import", "--mailbox", "help@example.com", empty); err == nil || !strings.Contains(err.Error(), "no files in "+empty) {
		t.Errorf("import of an empty folder: %v", err)
	}
	if _, _, err := cli(t, vars, "", "migrate"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := cli(t, vars, "", "apikey", "revoke", "--id", "-1"); err == nil || !strings.Contains(err.Error(), "--id -1 is not a key's id") {
		t.Errorf("apikey revoke --id -1: %v", err)
	}
}

// A stray argument is refused before anything starts: the flag package
// stops at the first argument, so "serve typo --database-url URL" ran on a
// new SQLite database in ./data with every later flag ignored.
func TestStrayArgumentsAreRefused(t *testing.T) {
	vars := map[string]string{"POSTDESK_DATA": t.TempDir()}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"serve", "typo", "--database-url", "postgres://127.0.0.1:1/x", "--listen", "127.0.0.1:0"},
			`serve: the flag --database-url comes after the argument "typo", so it would be ignored: put flags before arguments`},
		{[]string{"serve", "typo"}, `serve: unexpected argument "typo": this command takes only flags`},
		{[]string{"migrate", "now"}, `migrate: unexpected argument "now"`},
		{[]string{"version", "--x"}, `version: unexpected argument "--x"`},
		{[]string{"demo", "extra"}, `demo: unexpected argument "extra"`},
		{[]string{"user", "list", "extra"}, `user: unexpected argument "extra"`},
		{[]string{"mailbox", "list", "extra"}, `mailbox: unexpected argument "extra"`},
		{[]string{"mailbox", "add", "x", "--address", "a@example.com"}, `mailbox: the flag --address comes after the argument "x"`},
		{[]string{"import", "--mailbox", "a@example.com", "./mail", "--data", "/elsewhere"}, `import: the flag --data comes after the argument "./mail"`},
		{[]string{"inspect", "m.eml", "--text"}, `inspect: the flag --text comes after the argument "m.eml"`},
	} {
		_, _, err := cli(t, vars, "", c.args...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("postdesk %s: %v, want %q", strings.Join(c.args, " "), err, c.want)
		}
	}
	if entries, err := os.ReadDir(vars["POSTDESK_DATA"]); err != nil || len(entries) != 0 {
		t.Errorf("the data folder has %d entries (%v): a refused command wrote to it", len(entries), err)
	}
	// After --, an argument may start with a dash.
	if _, _, err := cli(t, vars, "", "inspect", "--", "-m.eml"); err == nil || !strings.Contains(err.Error(), "-m.eml") || strings.Contains(err.Error(), "comes after") {
		t.Errorf("inspect -- -m.eml: %v", err)
	}
}
