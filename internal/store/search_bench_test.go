package store_test

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/postdesk/postdesk/internal/store"
	"github.com/postdesk/postdesk/internal/store/storetest"
)

// BenchmarkSearch10k measures the ticket search on 10,000 tickets (about
// 3 messages each, bodies of a Zipf-distributed vocabulary, replies that
// quote) on each database: for every kind of query, the list of 50 (what
// the API answers with its count) and the web list page (the list and the
// counts of its view and status tabs), p50 and p99, beside the LIKE searches it replaces,
// measured in the same run, and the CPU time a page costs (this process
// and, when it runs on this machine, the PostgreSQL server: the figure a
// busy shared machine does not inflate). It checks that each query finds
// what was planted for it, and holds the target of 100 ms on the
// CPU time per page (the wall time only generously, under 1 s at the
// median), except for the stress cases, searches for words that most
// tickets contain, which it reports. Set POSTDESK_SEARCH_BENCH_DIR to keep the seeded databases
// between runs.
//
//	POSTDESK_TEST_POSTGRES_URL=... go test ./internal/store -run '^$' -bench Search10k -benchtime 200x
func BenchmarkSearch10k(b *testing.B) {
	for _, dialect := range storetest.Dialects {
		b.Run(dialect, func(b *testing.B) {
			db, kept := benchDB(b, dialect)
			start := time.Now()
			c := seedSearchCorpus(b, db, 10000, kept)
			seeded := time.Since(start)
			if dialect == "postgres" {
				// Steady state: what autovacuum would have done by now, so
				// it does not run (and count) during the first queries.
				if _, err := db.SQL().Exec(`VACUUM ANALYZE`); err != nil {
					b.Fatal(err)
				}
			}
			var table strings.Builder
			if c.messages > 0 {
				fmt.Fprintf(&table, "%s: seeded %d tickets, %d messages, %d notes through the store (indexed in each write) in %s: %.2f ms a message\n",
					dialect, c.tickets, c.messages, c.notes, seeded.Round(time.Second), float64(seeded.Milliseconds())/float64(c.messages))
			}
			fmt.Fprintf(&table, "%-46s %9s %9s %9s %9s %9s %7s\n", "query ("+dialect+", ms)", "list p50", "list p99", "page p50", "page p99", "page cpu", "hits")
			cpu := cpuClock(b, db)
			for _, qc := range c.cases() {
				b.Run(qc.name, func(b *testing.B) {
					qc.run(b, db, cpu, &table)
				})
			}
			fmt.Fprintf(os.Stdout, "\n%s\n", table.String())
		})
	}
}

// benchCase is one query: through the store's search, or a baseline in SQL.
type benchCase struct {
	name   string
	query  string // a search (through store.Tickets)
	like   string // else: the old LIKE on subject and requester
	bodies string // else: LIKE over every message body
	want   int64  // a ticket it must find (0: none in particular)
	first  bool   // ... in first place
	min    int    // at least this many hits
	// stress marks a worst case (words most tickets contain): reported
	// against the target, held only to the generous wall-time bound.
	stress bool
}

func (qc benchCase) run(b *testing.B, db *store.DB, cpu func() time.Duration, table *strings.Builder) {
	ctx := context.Background()
	var list, page []time.Duration
	var hits int
	var found []int64
	cpu0 := cpu()
	for i := range b.N {
		if qc.query == "" && i >= 10 {
			break // a baseline takes seconds: 10 samples say enough
		}
		t0 := time.Now()
		var ids []int64
		var err error
		switch {
		case qc.query != "":
			f := store.TicketFilter{Search: mustParse(b, qc.query), Limit: 50}
			var tickets []store.Ticket
			tickets, err = db.Tickets(ctx, f)
			for _, tk := range tickets {
				ids = append(ids, tk.ID)
			}
			t1 := time.Now()
			list = append(list, t1.Sub(t0))
			var tabs store.TabCounts
			tabs, err = db.CountTicketTabs(ctx, f, 1)
			hits = tabs.Views("").All
			page = append(page, time.Since(t0))
		default:
			ids, hits, err = baselineSearch(ctx, db, qc, func() { list = append(list, time.Since(t0)) })
			page = append(page, time.Since(t0))
		}
		if err != nil {
			b.Fatalf("%s: %v", qc.name, err)
		}
		found = ids
	}
	cpuPage := float64((cpu() - cpu0).Microseconds()) / 1000 / float64(len(page))
	if qc.want != 0 && !slices.Contains(found, qc.want) || qc.first && (len(found) == 0 || found[0] != qc.want) || hits < qc.min {
		b.Fatalf("%s: %d hits, first %v; want ticket %d (first: %v) and at least %d hits", qc.name, hits, found[:min(len(found), 3)], qc.want, qc.first, qc.min)
	}
	p := func(d []time.Duration, q float64) float64 {
		s := slices.Clone(d)
		slices.Sort(s)
		return float64(s[min(len(s)-1, int(float64(len(s))*q))].Microseconds()) / 1000
	}
	b.ReportMetric(p(list, .5), "list-p50-ms")
	b.ReportMetric(p(page, .5), "page-p50-ms")
	b.ReportMetric(p(page, .99), "page-p99-ms")
	b.ReportMetric(cpuPage, "page-cpu-ms")
	if b.N > 1 {
		flag := ""
		if p(page, .5) > 100 || cpuPage > 100 {
			flag = "  over 100 ms"
		}
		fmt.Fprintf(table, "%-46s %9.1f %9.1f %9.1f %9.1f %9.1f %7d%s\n", qc.name, p(list, .5), p(list, .99), p(page, .5), p(page, .99), cpuPage, hits, flag)
	}
	// The machine may be shared: CPU time per page holds the target, wall
	// time only generously.
	if qc.query != "" && b.N >= 20 && (cpuPage > 100 && !qc.stress || p(page, .5) > 1000) {
		b.Fatalf("%s: the page takes %.1f ms at the median, %.1f ms of CPU; the target is 100 ms", qc.name, p(page, .5), cpuPage)
	}
}

// cpuClock returns the CPU time used so far by this process and, on
// PostgreSQL running on this machine, by the server's processes: the work
// a search costs, whatever else the machine is doing.
func cpuClock(b *testing.B, db *store.DB) func() time.Duration {
	self := func() time.Duration {
		var ru syscall.Rusage
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
			b.Fatal(err)
		}
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	if db.Dialect() != "postgres" {
		return self
	}
	var dir string
	if err := db.SQL().QueryRow(`SHOW data_directory`).Scan(&dir); err != nil {
		b.Fatal(err)
	}
	pidFile, err := os.ReadFile(filepath.Join(dir, "postmaster.pid"))
	if err != nil {
		b.Logf("PostgreSQL is not on this machine (%v): CPU time is this process's only", err)
		return self
	}
	postmaster := strings.SplitN(string(pidFile), "\n", 2)[0]
	tick := time.Second / 100 // USER_HZ
	return func() time.Duration {
		total := self()
		procs, _ := filepath.Glob("/proc/[0-9]*/stat")
		for _, f := range procs {
			stat, err := os.ReadFile(f)
			if err != nil {
				continue
			}
			// pid (comm) state ppid ... utime(14) stime(15)
			_, rest, ok := strings.Cut(string(stat), ") ")
			fields := strings.Fields(rest)
			if !ok || len(fields) < 13 || (fields[1] != postmaster && filepath.Base(filepath.Dir(f)) != postmaster) {
				continue
			}
			u, _ := strconv.ParseInt(fields[11], 10, 64)
			s, _ := strconv.ParseInt(fields[12], 10, 64)
			total += time.Duration(u+s) * tick
		}
		return total
	}
}

// baselineSearch runs the LIKE search that the full-text search replaced
// (subject and requester only), or a LIKE over every message body (what
// finding a body word would cost without an index): the list of 50 (then
// listed is called) and the count by status.
func baselineSearch(ctx context.Context, db *store.DB, qc benchCase, listed func()) (ids []int64, hits int, err error) {
	op, ph := "LIKE", func(i int) string { return "?" }
	if db.Dialect() == "postgres" {
		op, ph = "ILIKE", func(i int) string { return fmt.Sprintf("$%d", i) }
	}
	var where string
	var args []any
	if qc.like != "" {
		pat := "%" + qc.like + "%"
		where = fmt.Sprintf("t.subject %s %s OR t.requester_address %s %s OR t.requester_name %s %s", op, ph(1), op, ph(2), op, ph(3))
		args = []any{pat, pat, pat}
	} else {
		where = fmt.Sprintf("t.id IN (SELECT ticket_id FROM messages WHERE text_body %s %s)", op, ph(1))
		args = []any{"%" + qc.bodies + "%"}
	}
	from := ` FROM tickets t JOIN mailboxes m ON m.id = t.mailbox_id WHERE ` + where
	rows, err := db.SQL().QueryContext(ctx, `SELECT t.id`+from+` ORDER BY t.updated_at DESC, t.id DESC LIMIT 50`, args...)
	if err != nil {
		return nil, 0, err
	}
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, 0, err
		}
		ids = append(ids, id)
	}
	rows.Close()
	listed()
	var counts *sql.Rows
	if counts, err = db.SQL().QueryContext(ctx, `SELECT t.status, COUNT(*)`+from+` GROUP BY t.status`, args...); err != nil {
		return nil, 0, err
	}
	defer counts.Close()
	for counts.Next() {
		var s string
		var n int
		if err := counts.Scan(&s, &n); err != nil {
			return nil, 0, err
		}
		hits += n
	}
	return ids, hits, counts.Err()
}

// searchCorpus is what seedSearchCorpus planted.
type searchCorpus struct {
	tickets, messages, notes int
	ids                      []int64 // by ticket number in the seed (0-based)
	unique                   int64   // the one ticket whose body says "dashboard"
	phrase                   int64   // one of those whose body says "card declined"
	alice                    int64   // the one ticket from alice.wonder@shop.test
	number                   int64   // a ticket id to search for
}

func (c *searchCorpus) cases() []benchCase {
	vocab := benchVocabulary(rand.New(rand.NewPCG(11, 12))) // as seeded
	return []benchCase{
		{name: "word only in one body: dashboard", query: "dashboard", want: c.unique, first: true, min: 1},
		{name: "  baseline: old LIKE subject/requester", like: "dashboard"},
		{name: "  baseline: LIKE over message bodies", bodies: "dashboard", want: c.unique, min: 1},
		{name: "rare word: " + vocab[3000], query: `"` + vocab[3000] + `"`, min: 10},
		{name: "frequent word: refund", query: `"refund"`, min: 1000},
		{name: "most common word: please", query: `"please"`, min: 3000, stress: true},
		{name: "  baseline: LIKE over message bodies", bodies: "please", min: 3000},
		{name: "two common words: please help", query: `"please" "help"`, min: 1000, stress: true},
		{name: "last word as prefix: passw", query: "passw", min: 1000},
		{name: `phrase: "card declined"`, query: `"card declined"`, want: c.phrase, min: 40},
		{name: `phrase of common words: "thank you"`, query: `"thank you"`, min: 100, stress: true},
		{name: "from: one requester: from:alice", query: "from:alice", want: c.alice, first: true, min: 1},
		{name: "  baseline: old LIKE subject/requester", like: "alice", want: c.alice, min: 1},
		{name: "from: common domain: from:gmail", query: "from:gmail", min: 1500},
		{name: fmt.Sprintf("ticket number: #%d", c.number), query: fmt.Sprintf("#%d", c.number), want: c.number, first: true, min: 1},
		{name: "word + status: + mailbox:", query: `"invoice" status:open mailbox:billing`, min: 10},
		{name: "word and exclusion: invoice -refund", query: `"invoice" -refund`, min: 100},
	}
}

// Words of the corpus, most frequent first (a Zipf law picks them); the
// tail is made-up words, so a body has a realistic share of rare words.
var benchHead = strings.Fields(`the to and a i you of is for it in my on we this that have with be please not can
	your are was at but thanks do as if from help our so an me get will just when error account order hi
	know there has thank would what again need still any all issue working or been after they one new time
	could us update problem see email login page should no ticket support app like also invoice get it's able
	team did how set up now payment password reset settings customer service data file attached screenshot
	since yesterday today week month shows phone web browser chrome version change sent receive received
	subscription plan billing charge charged twice card declined refund cancel access user users admin export
	report sync download upload install mobile desktop fix fixed tried restart cleared cache logged out back`)

func benchVocabulary(rnd *rand.Rand) []string {
	vocab := slices.Clone(benchHead)
	syll := strings.Fields("ka lo mi ter san do ri vel on ex pro tra ble men tion ing al ur pa ne so")
	seen := map[string]bool{"dashboard": true}
	for _, w := range vocab {
		seen[w] = true
	}
	for len(vocab) < 8000 {
		var b strings.Builder
		for range 2 + rnd.IntN(3) {
			b.WriteString(syll[rnd.IntN(len(syll))])
		}
		if w := b.String(); !seen[w] {
			seen[w] = true
			vocab = append(vocab, w)
		}
	}
	return vocab
}

// benchDB is a fresh database, or with POSTDESK_SEARCH_BENCH_DIR set one
// kept between runs (SQLite in that folder, PostgreSQL as the database
// postdesk_search_bench on the test server), seeded once.
func benchDB(b *testing.B, dialect string) (db *store.DB, kept bool) {
	dir := os.Getenv("POSTDESK_SEARCH_BENCH_DIR")
	if dir == "" {
		return storetest.Open(b, dialect), false
	}
	ctx := context.Background()
	cfg := store.Config{DataDir: filepath.Join(dir, dialect)}
	if dialect == "postgres" {
		admin := os.Getenv(storetest.EnvPostgres)
		if admin == "" {
			b.Skipf("%s is not set", storetest.EnvPostgres)
		}
		adb, err := sql.Open("pgx", admin)
		if err != nil {
			b.Fatal(err)
		}
		defer adb.Close()
		_, _ = adb.Exec("CREATE DATABASE postdesk_search_bench") // fails when it exists
		u, err := url.Parse(admin)
		if err != nil {
			b.Fatal(err)
		}
		u.Path = "/postdesk_search_bench"
		cfg.DatabaseURL = u.String()
	}
	db, err := store.Open(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	if _, err := db.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	return db, true
}

// seedSearchCorpus writes n tickets through the store (so they are indexed
// as ingest and replies index them), 500 per transaction. A kept database
// that has them already is used as it is (the corpus is deterministic).
func seedSearchCorpus(b *testing.B, db *store.DB, n int, kept bool) *searchCorpus {
	b.Helper()
	ctx := context.Background()
	if kept {
		if have, err := db.CountTickets(ctx, store.TicketFilter{}); err != nil {
			b.Fatal(err)
		} else if have == n {
			c := &searchCorpus{tickets: n}
			list, err := db.Tickets(ctx, store.TicketFilter{Limit: 500, Search: mustParse(b, "from:alice")})
			if err != nil || len(list) != 1 {
				b.Fatalf("kept corpus: alice %v, %v", list, err)
			}
			c.alice = list[0].ID
			first := mustParse(b, "dashboard")
			if list, err = db.Tickets(ctx, store.TicketFilter{Search: first}); err != nil || len(list) != 1 {
				b.Fatalf("kept corpus: dashboard %v, %v", list, err)
			}
			c.unique = list[0].ID
			if list, err = db.Tickets(ctx, store.TicketFilter{Search: mustParse(b, `"card declined"`), Limit: 1}); err != nil || len(list) != 1 {
				b.Fatalf("kept corpus: card declined %v, %v", list, err)
			}
			c.phrase = list[0].ID
			c.number = c.alice + 758
			return c
		}
	}
	rnd := rand.New(rand.NewPCG(11, 12))
	vocab := benchVocabulary(rnd)
	zipf := rand.NewZipf(rnd, 1.07, 2, uint64(len(vocab)-1))
	words := func(n int) string {
		var s strings.Builder
		for i := range n {
			if i > 0 {
				s.WriteByte(' ')
			}
			s.WriteString(vocab[zipf.Uint64()])
			if rnd.IntN(12) == 0 {
				s.WriteString(".\n")
			}
		}
		return s.String()
	}
	first := strings.Fields("john mary peter linda james susan robert karen michael nancy david lisa daniel emma paul olivia mark sophie kevin laura")
	last := strings.Fields("smith jones brown taylor wilson davies evans thomas roberts walker wright robinson thompson white hughes edwards green hall wood harris")
	c := &searchCorpus{}
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var mailboxes []store.Mailbox
	err := db.Write(ctx, func(tx *store.Tx) error {
		for _, a := range []string{"support@example.com", "billing@example.com", "sales@example.com"} {
			mb, err := tx.CreateMailbox(ctx, a, "")
			if err != nil {
				return err
			}
			mailboxes = append(mailboxes, mb)
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	statuses := []string{store.StatusOpen, store.StatusPending, store.StatusSolved, store.StatusSolved}
	for batch := 0; batch < n; batch += 500 {
		err := db.Write(ctx, func(tx *store.Tx) error {
			for i := batch; i < min(n, batch+500); i++ {
				fn, ln := first[rnd.IntN(len(first))], last[rnd.IntN(len(last))]
				domain := fmt.Sprintf("company%d.test", rnd.IntN(2000))
				if rnd.IntN(4) == 0 {
					domain = "gmail.test"
				}
				addr := fmt.Sprintf("%s.%s@%s", fn, ln, domain)
				if i == 4242 {
					fn, ln, addr = "Alice", "Wonder", "alice.wonder@shop.test"
				}
				at := base.Add(time.Duration(i) * 17 * time.Minute)
				mb := mailboxes[rnd.IntN(len(mailboxes))]
				id, err := tx.CreateTicket(ctx, store.Ticket{MailboxID: mb.ID, Subject: words(3 + rnd.IntN(5)), RequesterAddress: addr,
					RequesterName: fn + " " + ln, Status: statuses[rnd.IntN(len(statuses))], CreatedAt: at, UpdatedAt: at.Add(time.Hour)})
				if err != nil {
					return err
				}
				c.ids = append(c.ids, id)
				body := "Hi,\n" + words(40+rnd.IntN(260))
				switch {
				case i == 7777:
					body += " The dashboard is empty."
					c.unique = id
				case i%200 == 3:
					body += " My card declined at checkout."
					c.phrase = id
				}
				var prev string
				for k := range 2 + rnd.IntN(3) {
					m := store.Message{MailboxID: mb.ID, TicketID: id, Direction: "in", Kind: store.KindEmail, FromAddress: addr, FromName: fn + " " + ln,
						ReceivedAt: at.Add(time.Duration(k) * time.Hour), DedupeKey: fmt.Sprintf("mid:%d.%d@bench", i, k), TextBody: body}
					if k%2 == 1 {
						m.Direction, m.Kind, m.FromAddress, m.FromName = "out", store.KindReply, mb.Address, ""
						m.TextBody = "Hello " + fn + ",\n" + words(30+rnd.IntN(120)) + "\nBest regards, Support"
					}
					if prev != "" {
						m.TextBody += "\n\nOn Monday you wrote:\n> " + strings.ReplaceAll(prev, "\n", "\n> ")
					}
					if err := tx.InsertMessage(ctx, &m); err != nil {
						return err
					}
					prev = m.TextBody
					body = words(20 + rnd.IntN(150))
					c.messages++
				}
				if rnd.IntN(10) == 0 {
					if err := tx.AddNote(ctx, &store.Note{TicketID: id, Kind: store.NoteInternal, Body: words(10 + rnd.IntN(40)), CreatedAt: at.Add(time.Hour)}); err != nil {
						return err
					}
					c.notes++
				}
				c.tickets++
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	c.alice, c.number = c.ids[4242], c.ids[5000]
	return c
}
