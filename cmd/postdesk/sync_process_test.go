package main

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/postdesk/postdesk/internal/mailtest"
	"github.com/postdesk/postdesk/internal/store"
	"github.com/postdesk/postdesk/internal/store/storetest"
)

// These tests run the real binary: `postdesk mailbox add` configures the
// mailboxes and `postdesk serve` processes sync them from a real Dovecot,
// killed with SIGKILL at random points. Only the processes a test started
// are ever signalled, and every one is gone when the test ends.

// buildPostdesk builds this command into a temporary folder.
func buildPostdesk(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the binary: not with -short")
	}
	bin := filepath.Join(t.TempDir(), "postdesk")
	began := time.Now()
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	t.Logf("built postdesk in %s", time.Since(began).Round(time.Millisecond))
	return bin
}

// procEnv is the environment of the postdesk processes of a test.
type procEnv struct {
	t    *testing.T
	bin  string
	vars []string // POSTDESK_* settings shared by every process
	logs string   // folder of the processes' output
}

func newProcEnv(t *testing.T, bin string, vars ...string) *procEnv {
	return &procEnv{t: t, bin: bin, vars: append([]string{"POSTDESK_LOG_LEVEL=info"}, vars...), logs: t.TempDir()}
}

func (p *procEnv) command(extra []string, args ...string) *exec.Cmd {
	cmd := exec.Command(p.bin, args...)
	// Only PATH and HOME from the test's environment: no POSTDESK_* leaks in.
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}, p.vars...)
	cmd.Env = append(cmd.Env, extra...)
	return cmd
}

// run runs a short command to completion and returns its standard output.
func (p *procEnv) run(stdin string, args ...string) string {
	p.t.Helper()
	cmd := p.command(nil, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		p.t.Fatalf("postdesk %s: %v\n%s%s", strings.Join(args, " "), err, out.String(), errOut.String())
	}
	return out.String()
}

// addPasswordMailbox configures a password mailbox on the stack with the CLI.
func (p *procEnv) addPasswordMailbox(stack *mailtest.Stack, address, password string) {
	p.t.Helper()
	host, port, _ := strings.Cut(stack.IMAPAddr, ":")
	out := p.run(password+"\n", "mailbox", "add", "--address", address, "--auth", "password",
		"--imap-host", host, "--imap-port", port, "--imap-security", "none", "--password-stdin")
	if !strings.Contains(out, "added mailbox "+address) {
		p.t.Fatalf("mailbox add %s: %s", address, out)
	}
}

// serveProc is a running `postdesk serve`.
type serveProc struct {
	cmd  *exec.Cmd
	done chan struct{}
	name string
}

// serve starts `postdesk serve` with extra settings; its output is
// appended to logs/<name>.log. It is killed at cleanup if still running.
func (p *procEnv) serve(name string, extra ...string) *serveProc {
	p.t.Helper()
	f, err := os.OpenFile(filepath.Join(p.logs, name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		p.t.Fatal(err)
	}
	defer f.Close()
	// Port 0: the kernel picks a free port, so processes never collide.
	cmd := p.command(append([]string{"POSTDESK_LISTEN=127.0.0.1:0"}, extra...), "serve")
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		p.t.Fatalf("start serve: %v", err)
	}
	s := &serveProc{cmd: cmd, done: make(chan struct{}), name: name}
	go func() { cmd.Wait(); close(s.done) }()
	p.t.Cleanup(s.kill)
	return s
}

// kill sends SIGKILL to this process (never to any other) and reaps it.
// os.Process signals through a pidfd, so a reused pid is never hit.
func (s *serveProc) kill() {
	select {
	case <-s.done:
		return
	default:
	}
	s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.done
}

func (s *serveProc) exited() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// logTail is the end of a process log, for failure messages.
func (p *procEnv) logTail(name string, lines int) string {
	b, _ := os.ReadFile(filepath.Join(p.logs, name+".log"))
	all := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}

// customerMail is a customer's first email: its own Message-ID and
// subject, so each one is a new ticket.
func customerMail(rcpt string, i int, rng *rand.Rand) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "From: Customer %d <c%d@customer.example>\r\nTo: %s\r\nSubject: Order %d does not arrive\r\n"+
		"Date: %s\r\nMessage-ID: <crash-%d-%s@customer.example>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n",
		i, i%97, rcpt, i, time.Now().Format(time.RFC1123Z), i, strings.ReplaceAll(rcpt, "@", "."))
	for range 5 + rng.IntN(40) {
		fmt.Fprintf(&b, "Hello, my order %d has not arrived yet; could you tell me where it is? Line %d.\r\n", i, rng.IntN(1000))
	}
	return []byte(b.String())
}

// openStore opens the processes' database from the test, read and checked directly.
func openStore(t *testing.T, cfg store.Config) *store.DB {
	t.Helper()
	db, err := store.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// storedCounts is what the database holds: messages, distinct Message-IDs
// and tickets.
func storedCounts(t *testing.T, db *store.DB) (messages, distinct, tickets int) {
	t.Helper()
	row := db.SQL().QueryRowContext(context.Background(),
		`SELECT (SELECT COUNT(*) FROM messages), (SELECT COUNT(DISTINCT message_id) FROM messages), (SELECT COUNT(*) FROM tickets)`)
	if err := row.Scan(&messages, &distinct, &tickets); err != nil {
		t.Fatalf("count stored messages: %v", err)
	}
	return messages, distinct, tickets
}

// waitStored waits until the database holds want messages; more is a
// duplicate and fails at once.
func waitStored(t *testing.T, db *store.DB, want int, within time.Duration, diag func() string) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		n, _, _ := storedCounts(t, db)
		if n == want {
			return time.Since(start)
		}
		if n > want {
			t.Fatalf("%d messages stored, want %d: duplicates", n, want)
		}
		if time.Since(start) > within {
			t.Fatalf("after %s: %d of %d messages stored\n%s", within, n, want, diag())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// The crash done-when of issue 4: `postdesk serve` is killed with SIGKILL
// at random points 10 times while 2,000 messages arrive; at the end exactly
// 2,000 are stored, each a ticket, none twice.
func TestServeSurvivesSIGKILL(t *testing.T) {
	const (
		address = "support@example.com"
		secret  = "crash-test-password"
		total   = 2000
		byLMTP  = 1200 // the rest is appended in one MULTIAPPEND
		kills   = 10
	)
	stack := mailtest.Start(t, mailtest.Options{PasswordUsers: map[string]string{address: secret}})
	bin := buildPostdesk(t)
	data := t.TempDir()
	// A stable owner name: a restarted process renews the lease its killed
	// predecessor held instead of waiting for it to expire (LeaseTTL).
	p := newProcEnv(t, bin, "POSTDESK_DATA="+data, "POSTDESK_SYNC_OWNER=crash-test")
	p.addPasswordMailbox(stack, address, secret)
	db := openStore(t, store.Config{DataDir: data})
	diag := func() string { return p.logTail("serve", 40) }

	srv := p.serve("serve")
	ctx := t.Context()
	seed := uint64(time.Now().UnixNano())
	t.Logf("kill points seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 4))
	var atKill []int
	killAndRestart := func() {
		t.Helper()
		if srv.exited() {
			t.Fatalf("serve exited by itself:\n%s", diag())
		}
		srv.kill()
		n, _, _ := storedCounts(t, db)
		atKill = append(atKill, n)
		srv = p.serve("serve")
	}

	// Phase 1: mail arrives one message at a time (LMTP) while serve is
	// killed every 0.2-1.5 s.
	delivered := make(chan error, 1)
	began := time.Now()
	go func() {
		rng := rand.New(rand.NewPCG(1, 2))
		for i := range byLMTP {
			if err := stack.Deliver(ctx, address, customerMail(address, i, rng)); err != nil {
				delivered <- fmt.Errorf("deliver %d: %w", i, err)
				return
			}
		}
		delivered <- nil
	}()
	var lmtpErr error
phase1:
	for len(atKill) < kills-1 {
		select {
		case lmtpErr = <-delivered:
			break phase1
		case <-time.After(200*time.Millisecond + time.Duration(rng.Int64N(int64(1300*time.Millisecond)))):
			killAndRestart()
		}
	}
	if lmtpErr == nil && len(atKill) == kills-1 {
		lmtpErr = <-delivered
	}
	if lmtpErr != nil {
		t.Fatal(lmtpErr)
	}
	t.Logf("delivered %d messages over LMTP in %s, killing serve %d times", byLMTP, time.Since(began).Round(time.Millisecond), len(atKill))

	// Phase 2: the rest lands in one MULTIAPPEND chunk per remaining kill,
	// and each kill hits a random point of that chunk's ingestion, so every
	// kill (and the last restart) has mail in flight however fast the sync
	// is. A chunk already fully stored when its kill comes is still fine.
	rngMail := rand.New(rand.NewPCG(3, 4))
	next := byLMTP
	for left := kills - len(atKill); left > 0; left-- {
		chunkEnd := next + (total-next)/left
		var chunk [][]byte
		for ; next < chunkEnd; next++ {
			chunk = append(chunk, customerMail(address, next, rngMail))
		}
		n0, _, _ := storedCounts(t, db)
		if err := stack.Append(ctx, address, secret, "INBOX", chunk); err != nil {
			t.Fatal(err)
		}
		// Wait until some of the chunk is stored (or a short while), then
		// a little more: the kill lands mid-batch.
		deadline := time.Now().Add(2 * time.Second)
		for n, _, _ := storedCounts(t, db); n <= n0 && time.Now().Before(deadline) && !srv.exited(); n, _, _ = storedCounts(t, db) {
			time.Sleep(2 * time.Millisecond)
		}
		time.Sleep(time.Duration(rng.IntN(30)) * time.Millisecond)
		killAndRestart()
	}
	lastRestart := time.Now()
	t.Logf("killed serve %d times; messages stored at each kill: %v", kills, atKill)
	if last := atKill[len(atKill)-1]; last >= total {
		t.Logf("note: the last kill came after all %d messages were stored", total)
	}
	waitStored(t, db, total, 2*time.Minute, diag)
	t.Logf("caught up on %d messages in %s after the last restart", total-atKill[len(atKill)-1], time.Since(lastRestart).Round(time.Millisecond))

	// Let a late duplicate show itself before counting.
	time.Sleep(500 * time.Millisecond)
	messages, distinct, tickets := storedCounts(t, db)
	if messages != total || distinct != total || tickets != total {
		t.Fatalf("stored %d messages (%d distinct Message-IDs) and %d tickets, want %d of each", messages, distinct, tickets, total)
	}
	out := p.run("", "mailbox", "show", address)
	if want := fmt.Sprintf(", last uid %d", total); !strings.Contains(out, "checkpoint INBOX: uidvalidity ") || !strings.Contains(out, want) {
		t.Fatalf("mailbox show prints no checkpoint at UID %d:\n%s", total, out)
	}
	if srv.exited() {
		t.Fatalf("serve exited by itself:\n%s", diag())
	}
}

// lease is a row of sync_leases.
type lease struct {
	owner   string
	expires time.Time
}

// leases returns the live leases by mailbox id.
func leases(t *testing.T, db *store.DB) map[int64]lease {
	t.Helper()
	rows, err := db.SQL().QueryContext(context.Background(), `SELECT mailbox_id, owner, expires_at FROM sync_leases`)
	if err != nil {
		t.Fatalf("read leases: %v", err)
	}
	defer rows.Close()
	got := map[int64]lease{}
	now := time.Now()
	for rows.Next() {
		var id, ms int64
		var l lease
		if err := rows.Scan(&id, &l.owner, &ms); err != nil {
			t.Fatal(err)
		}
		l.expires = time.UnixMilli(ms)
		if !l.expires.Before(now) {
			got[id] = l
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return got
}

// lockHolders counts the sessions holding mail sync's advisory locks,
// checking that each mailbox's lock has one holder.
func lockHolders(t *testing.T, db *store.DB) int {
	t.Helper()
	rows, err := db.SQL().QueryContext(context.Background(), `SELECT objid, COUNT(*), MIN(pid), MAX(pid) FROM pg_locks
		WHERE locktype = 'advisory' AND classid = $1 AND objsubid = 2 AND granted
		AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) GROUP BY objid`, store.SyncLockClass)
	if err != nil {
		t.Fatalf("read advisory locks: %v", err)
	}
	defer rows.Close()
	pids := map[int]bool{}
	for rows.Next() {
		var id, n, lo, hi int
		if err := rows.Scan(&id, &n, &lo, &hi); err != nil {
			t.Fatal(err)
		}
		if n != 1 {
			t.Fatalf("mailbox %d's lock is held %d times", id, n)
		}
		pids[lo] = true
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return len(pids)
}

// perMailbox counts the messages of each mailbox and the largest number of
// copies of one Message-ID.
func perMailbox(t *testing.T, db *store.DB) (counts map[int64]int, maxCopies int) {
	t.Helper()
	ctx := context.Background()
	rows, err := db.SQL().QueryContext(ctx, `SELECT mailbox_id, COUNT(*) FROM messages GROUP BY mailbox_id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	counts = map[int64]int{}
	for rows.Next() {
		var id int64
		var n int
		if err := rows.Scan(&id, &n); err != nil {
			t.Fatal(err)
		}
		counts[id] = n
	}
	if err := db.SQL().QueryRowContext(ctx, `SELECT COALESCE(MAX(n), 0) FROM (SELECT COUNT(*) AS n FROM messages GROUP BY message_id) AS c`).Scan(&maxCopies); err != nil {
		t.Fatal(err)
	}
	return counts, maxCopies
}

// The lease done-when of issue 4, and the takeover done-when of issue 13:
// two `serve` processes on one PostgreSQL with 20 mailboxes, each with its
// own data folder (no shared disk); every mailbox
// is synced by one of them; when one is killed with SIGKILL while mail
// arrives, the other holds all its mailboxes (their advisory locks and
// lease rows) within 5 s, and every message is stored exactly once.
func TestTwoServeProcessesShareMailboxes(t *testing.T) {
	const (
		mailboxes = 20
		perRound  = 10
	)
	users := map[string]string{}
	var addrs []string
	for i := range mailboxes {
		a := fmt.Sprintf("support%02d@example.com", i)
		addrs = append(addrs, a)
		users[a] = "password-" + a
	}
	stack := mailtest.Start(t, mailtest.Options{PasswordUsers: users})
	dbURL := storetest.NewPostgresDatabase(t)
	bin := buildPostdesk(t)
	// Two hosts share the database and the secret key, never a disk: each
	// serve has its own data folder (blobs live in PostgreSQL); data is
	// the set-up commands' own.
	data := t.TempDir()
	key := "POSTDESK_SECRET_KEY=" + store.EncodeKey(store.GenerateKey())
	p := newProcEnv(t, bin, "POSTDESK_DATA="+data, "POSTDESK_DATABASE_URL="+dbURL, key)
	for _, a := range addrs {
		p.addPasswordMailbox(stack, a, users[a])
	}
	db := openStore(t, store.Config{DataDir: data, DatabaseURL: dbURL})
	ids := map[int64]string{}
	for _, a := range addrs {
		mb, err := db.MailboxByAddress(context.Background(), a)
		if err != nil {
			t.Fatal(err)
		}
		ids[mb.ID] = a
	}
	procs := map[string]*serveProc{
		"a": p.serve("a", "POSTDESK_SYNC_OWNER=a", "POSTDESK_DATA="+t.TempDir()),
		"b": p.serve("b", "POSTDESK_SYNC_OWNER=b", "POSTDESK_DATA="+t.TempDir()),
	}
	diag := func() string {
		return "--- a:\n" + p.logTail("a", 30) + "\n--- b:\n" + p.logTail("b", 30)
	}

	ctx := t.Context()
	deliverRound := func(round int) {
		t.Helper()
		var wg sync.WaitGroup
		errs := make(chan error, len(addrs))
		for _, a := range addrs {
			wg.Go(func() {
				rng := rand.New(rand.NewPCG(uint64(round), uint64(len(a))))
				for i := range perRound {
					if err := stack.Deliver(ctx, a, customerMail(a, round*perRound+i, rng)); err != nil {
						errs <- err
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
	}
	// check waits until every mailbox holds want messages, none twice.
	check := func(want int) {
		t.Helper()
		deadline := time.Now().Add(time.Minute)
		for {
			counts, maxCopies := perMailbox(t, db)
			if maxCopies > 1 {
				t.Fatalf("a Message-ID is stored %d times", maxCopies)
			}
			done := len(counts) == mailboxes
			for id := range ids {
				if counts[id] > want {
					t.Fatalf("mailbox %s holds %d messages, want %d", ids[id], counts[id], want)
				}
				done = done && counts[id] == want
			}
			if done {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("messages per mailbox after a minute: %v, want %d each\n%s", counts, want, diag())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	deliverRound(0)
	check(perRound)
	// Each process takes its fair share (10 of 20) within a few rounds.
	var byOwner map[string]int
	for balanceBy := time.Now().Add(30 * time.Second); ; {
		held := leases(t, db)
		byOwner = map[string]int{}
		for id := range ids {
			l, ok := held[id]
			if !ok {
				continue // between a release and the other's takeover
			}
			if _, ok := procs[l.owner]; !ok {
				t.Fatalf("mailbox %s is leased by %q", ids[id], l.owner)
			}
			byOwner[l.owner]++
		}
		if byOwner["a"] == mailboxes/2 && byOwner["b"] == mailboxes/2 {
			break
		}
		if time.Now().After(balanceBy) {
			t.Fatalf("leases not shared fairly after 30 s: %v", byOwner)
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("leases before the kill: %v", byOwner)

	// Kill the process holding the most mailboxes (both, if it can), while
	// the next round of mail is being delivered.
	victim, survivor := "a", "b"
	if byOwner["b"] > byOwner["a"] {
		victim, survivor = "b", "a"
	}
	delivering := make(chan struct{})
	go func() { defer close(delivering); deliverRound(1) }()
	time.Sleep(200 * time.Millisecond)
	procs[victim].kill()
	killed := time.Now()
	var took time.Duration
	for {
		held := leases(t, db)
		n := 0
		for id := range ids {
			if held[id].owner == survivor {
				n++
			}
		}
		if n == mailboxes && lockHolders(t, db) == 1 {
			took = time.Since(killed)
			break
		}
		if time.Since(killed) > 60*time.Second {
			t.Fatalf("60 s after %s was killed, %s holds %d of %d leases\n%s", victim, survivor, n, mailboxes, diag())
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("takeover: %s holds all %d mailboxes (locks and leases) %s after %s was killed with SIGKILL", survivor, mailboxes,
		took.Round(time.Millisecond), victim)
	if took > 5*time.Second {
		t.Fatalf("takeover took %s, want under 5 s", took)
	}
	<-delivering
	check(2 * perRound)
	messages, distinct, _ := storedCounts(t, db)
	if messages != 2*perRound*mailboxes || distinct != messages {
		t.Fatalf("stored %d messages, %d distinct Message-IDs, want %d", messages, distinct, 2*perRound*mailboxes)
	}
	if procs[survivor].exited() {
		t.Fatalf("%s exited by itself\n%s", survivor, diag())
	}
}
