package mailsync_test

import (
	"os/exec"
	"strings"
	"testing"
)

// Imports go one way: imapsync is a leaf, jobs keeps River and the outbox
// (smtpsend, and imapsync for the Sent folder only: no mail sync), and
// mailsync calls no surface.
func TestImportsGoOneWay(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	const app = "github.com/postdesk/postdesk/internal/"
	forbidden := map[string][]string{
		"imapsync": {"store", "ingest", "mailsync", "oauth", "jobs", "desk", "web", "api"},
		"jobs":     {"mailsync", "ingest", "desk", "web", "api"},
		"mailsync": {"jobs", "desk", "web", "api"},
		"ingest":   {"mailsync", "imapsync", "jobs", "desk", "web", "api"},
	}
	for pkg, bad := range forbidden {
		out, err := exec.Command("go", "list", "-deps", app+pkg).Output()
		if err != nil {
			t.Fatalf("go list %s: %v", pkg, err)
		}
		deps := map[string]bool{}
		for _, d := range strings.Fields(string(out)) {
			deps[d] = true
		}
		for _, b := range bad {
			if deps[app+b] {
				t.Errorf("%s imports %s", pkg, b)
			}
		}
	}
}
