package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/postdesk/postdesk/internal/mailtest"
	"github.com/postdesk/postdesk/internal/store"
	"github.com/postdesk/postdesk/internal/store/storetest"
)

// mailWithAttachment is a customer's email carrying a file, base64 encoded.
func mailWithAttachment(rcpt string, file []byte) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: Ann <ann@customer.example>\r\nTo: %s\r\nSubject: The invoice\r\nDate: %s\r\n"+
		"Message-ID: <invoice-1@customer.example>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n"+
		"--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nThe invoice is attached.\r\n"+
		"--b1\r\nContent-Type: application/pdf; name=\"invoice.pdf\"\r\nContent-Disposition: attachment; filename=\"invoice.pdf\"\r\n"+
		"Content-Transfer-Encoding: base64\r\n\r\n", rcpt, time.Now().Format(time.RFC1123Z))
	enc := base64.StdEncoding.EncodeToString(file)
	for len(enc) > 76 {
		b.WriteString(enc[:76] + "\r\n")
		enc = enc[76:]
	}
	b.WriteString(enc + "\r\n--b1--\r\n")
	return b.Bytes()
}

// apiGet fetches a path of the API with a key and returns the body.
func apiGet(t *testing.T, base, key, path string) []byte {
	t.Helper()
	req, _ := http.NewRequest("GET", base+path, nil)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s\n%s", path, resp.Status, body)
	}
	return body
}

// Issue 13's done-when: two `serve` processes with different data folders
// on one PostgreSQL (no shared disk: the first one's folder is deleted
// before the second reads): mail fetched by one from a real Dovecot is
// shown by the other through the API, attachment and raw source byte for
// byte.
func TestTwoHostsServeEachOthersMail(t *testing.T) {
	const addr = "support@example.com"
	stack := mailtest.Start(t, mailtest.Options{PasswordUsers: map[string]string{addr: "pw-support"}})
	dbURL := storetest.NewPostgresDatabase(t)
	bin := buildPostdesk(t)
	key := "POSTDESK_SECRET_KEY=" + store.EncodeKey(store.GenerateKey()) // the hosts share the key, not a disk
	dataA, dataB := t.TempDir(), t.TempDir()
	hostA := newProcEnv(t, bin, "POSTDESK_DATA="+dataA, "POSTDESK_DATABASE_URL="+dbURL, key)
	hostB := newProcEnv(t, bin, "POSTDESK_DATA="+dataB, "POSTDESK_DATABASE_URL="+dbURL, key)
	hostA.addPasswordMailbox(stack, addr, "pw-support")

	file := make([]byte, 700<<10) // three chunks in the database
	rng := rand.New(rand.NewPCG(13, 13))
	for i := range file {
		file[i] = byte(rng.UintN(256))
	}
	raw := mailWithAttachment(addr, file)
	a := hostA.serve("a")
	waitListening(t, hostA, a)
	if err := stack.Deliver(context.Background(), addr, raw); err != nil {
		t.Fatal(err)
	}
	db := openStore(t, store.Config{DataDir: t.TempDir(), DatabaseURL: dbURL})
	waitStored(t, db, 1, time.Minute, func() string { return hostA.logTail("a", 30) })
	a.kill()
	if err := os.RemoveAll(dataA); err != nil {
		t.Fatal(err)
	}

	hostB.run("", "user", "add", "--email", "ada@example.com", "--role", "admin")
	apiKey := strings.TrimSpace(hostB.run("", "apikey", "create", "--user", "ada@example.com"))
	b := hostB.serve("b")
	base := waitListening(t, hostB, b)
	var ticket struct {
		Messages []struct {
			RawURL      string `json:"raw_url"`
			Attachments []struct {
				Filename string `json:"filename"`
				Size     int64  `json:"size"`
				URL      string `json:"url"`
			} `json:"attachments"`
		} `json:"messages"`
	}
	if err := json.Unmarshal(apiGet(t, base, apiKey, "/api/v1/tickets/1"), &ticket); err != nil {
		t.Fatal(err)
	}
	if len(ticket.Messages) != 1 || len(ticket.Messages[0].Attachments) != 1 {
		t.Fatalf("ticket 1 as host b shows it: %+v", ticket)
	}
	m := ticket.Messages[0]
	if at := m.Attachments[0]; at.Filename != "invoice.pdf" || at.Size != int64(len(file)) {
		t.Errorf("attachment = %+v", at)
	}
	if got := apiGet(t, base, apiKey, m.Attachments[0].URL); !bytes.Equal(got, file) {
		t.Errorf("attachment from host b: %d bytes, not the %d sent", len(got), len(file))
	}
	gotRaw := apiGet(t, base, apiKey, m.RawURL)
	// Dovecot adds its own header lines on delivery; the rest is as sent.
	if !bytes.HasSuffix(gotRaw, raw) {
		t.Errorf("raw source from host b (%d bytes) is not the message sent (%d bytes)", len(gotRaw), len(raw))
	}
	// Host b kept nothing of it on its disk.
	var files []string
	filepath.WalkDir(dataB, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && (strings.Contains(p, "blob-spool") || strings.Contains(p, string(filepath.Separator)+"blobs"+string(filepath.Separator))) {
			files = append(files, p)
		}
		return nil
	})
	if len(files) > 0 {
		t.Errorf("host b holds blob files: %v", files)
	}
}
