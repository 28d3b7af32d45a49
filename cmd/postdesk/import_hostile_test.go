package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/postdesk/postdesk/internal/mailtest"
	"github.com/postdesk/postdesk/internal/store/storetest"
)

// TestImportHostileProcess runs the real binary: `postdesk import` of the
// hostile messages of issue 8 (NUL, huge ids and headers, forwards cut
// off) stores every one on each database, none FAILED, and a second import
// is all duplicates.
func TestImportHostileProcess(t *testing.T) {
	bin := buildPostdesk(t)
	dir := t.TempDir()
	files, err := mailtest.WriteHostile(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, dialect := range storetest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			vars := []string{"POSTDESK_DATA=" + t.TempDir()}
			if dialect == "postgres" {
				vars = append(vars, "POSTDESK_DATABASE_URL="+storetest.NewPostgresDatabase(t))
			}
			p := newProcEnv(t, bin, vars...)
			p.run("", "migrate")
			// Paul is an agent, so his forwards go through forward recovery.
			p.run("", "user", "add", "--email", "paul.agent@postdesk.example")
			out := p.run("", "import", "--mailbox", "support@postdesk.example", dir)
			if strings.Contains(out, "FAILED") || !strings.Contains(out, " 0 failed") {
				t.Fatalf("first import:\n%s", out)
			}
			for _, f := range files {
				if !strings.Contains(out, filepath.Base(f)+": ") {
					t.Errorf("no outcome for %s", filepath.Base(f))
				}
			}
			if !strings.Contains(out, "99_normal_last.eml: new ticket") ||
				!strings.Contains(out, "07_reply_to_long_message_id.eml: joined ticket") {
				t.Errorf("first import:\n%s", out)
			}
			t.Logf("first import:\n%s", out)
			out = p.run("", "import", "--mailbox", "support@postdesk.example", dir)
			want := fmt.Sprintf("done: 0 new tickets, 0 joined, 0 attached to tickets, 0 ignored, %d duplicates, 0 quarantined, 0 failed", len(files))
			if !strings.Contains(out, want) {
				t.Errorf("second import, want %q:\n%s", want, out)
			}
		})
	}
}
