// Command benchreplies measures how fast Postdesk's outbox gets replies
// accepted by a real Postfix, beside a bare go-smtp loop sending the same
// messages over one connection to the same Postfix, and the latency of one
// reply on an idle queue (issue 10). scripts/bench-replies runs it; see the
// README's "Reply benchmark".
//
// It starts internal/mailtest's Postfix and Dovecot with the stand-in
// Microsoft sign-in (XOAUTH2 checked by token introspection), a Postdesk
// store with one signed-in OAuth mailbox, and the outbox sender wired as
// serve wires it (River runner with the send job and sweep, desk.Reply
// waking it). Then, per run, on fresh tickets:
//
//   - queued replies sent: N replies written with desk.Reply while another
//     owner holds the mailbox's outbox lease, then the lease released and
//     the sender woken; timed until Postfix has accepted all N (its log:
//     the queue file committed, matched by Message-ID);
//   - written and sent: N replies written one after another while the
//     sender runs, from the first call until Postfix accepted all N;
//   - bare loop: the same N messages (the bytes Postdesk sent) over one
//     go-smtp connection, same port, TLS and XOAUTH2 token; timed from
//     dialling to the last 250, and to Postfix's log of the last one;
//
// and once, latency: L single replies on an idle queue, each from the call
// of desk.Reply ("Send" clicked) until Postfix accepted it.
//
// Every reply must be accepted exactly once; figures are printed, not
// asserted. It must run as root (Dovecot and Postfix masters).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"sort"
	"time"

	"github.com/postdesk/postdesk/internal/desk"
	"github.com/postdesk/postdesk/internal/store"
)

type options struct {
	n, latency, runs, warmup int
	gap                      time.Duration
	dir, databaseURL         string
	security                 string
	cpuProfile, blockProfile string
	drainProfile             string
	keep                     bool
}

func main() {
	var o options
	flag.IntVar(&o.n, "n", 1000, "replies in the throughput run")
	flag.IntVar(&o.latency, "latency", 100, "single replies in the latency run (0: none)")
	flag.IntVar(&o.runs, "runs", 1, "throughput runs (postdesk then bare loop, each run); the table shows medians")
	flag.IntVar(&o.warmup, "warmup", 20, "untimed replies (and bare sends) before measuring")
	flag.DurationVar(&o.gap, "gap", 250*time.Millisecond, "idle time before each reply of the latency run")
	flag.StringVar(&o.dir, "dir", "/var/tmp", "parent of the work folder (Postdesk's data: use a disk, not tmpfs)")
	flag.StringVar(&o.databaseURL, "database-url", "", "PostgreSQL URL of an empty database (default: SQLite in the work folder)")
	flag.StringVar(&o.security, "security", "starttls", "SMTP security of the mailbox and the bare loop: starttls or none")
	flag.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the first run's postdesk phases (queued sent, written and sent) here")
	flag.StringVar(&o.drainProfile, "drainprofile", "", "write a CPU profile of the first run's queued-replies-sent phase alone here (not with -cpuprofile)")
	flag.StringVar(&o.blockProfile, "blockprofile", "", "write a blocking profile of the first run's written-and-sent phase here")
	flag.BoolVar(&o.keep, "keep", false, "keep the work folder")
	flag.Parse()
	if o.cpuProfile != "" && o.drainProfile != "" {
		fmt.Fprintln(os.Stderr, "benchreplies: -cpuprofile and -drainprofile cannot be used together")
		os.Exit(2)
	}
	if o.security != "starttls" && o.security != "none" {
		fmt.Fprintln(os.Stderr, "benchreplies: -security must be starttls or none")
		os.Exit(2)
	}
	if err := run(context.Background(), o); err != nil {
		fmt.Fprintln(os.Stderr, "benchreplies:", err)
		os.Exit(1)
	}
}

func progress(format string, args ...any) { fmt.Fprintf(os.Stderr, "==> "+format+"\n", args...) }

func run(ctx context.Context, o options) (err error) {
	work, err := os.MkdirTemp(o.dir, "postdesk-bench-replies.")
	if err != nil {
		return err
	}
	defer func() {
		if o.keep || err != nil {
			progress("kept %s", work)
			return
		}
		os.RemoveAll(work)
	}()
	logFile, err := os.Create(filepath.Join(work, "postdesk.log"))
	if err != nil {
		return err
	}
	defer logFile.Close()
	// Info, as serve logs by default: one line per reply sent is part of the cost.
	log := slog.New(slog.NewTextHandler(logFile, &slog.HandlerOptions{Level: slog.LevelInfo}))

	progress("starting Postfix and Dovecot, opening the store")
	e, err := startEnv(ctx, log, filepath.Join(work, "data"), o.databaseURL, o.security)
	if e != nil {
		defer func() {
			if cerr := e.close(); cerr != nil && err == nil {
				err = cerr
			}
		}()
	}
	if err != nil {
		return err
	}
	follow, stopFollow := context.WithCancel(ctx)
	defer stopFollow()
	pf, err := followPostfixLog(follow, filepath.Join(e.stack.Dir, "log", "postfix.log"))
	if err != nil {
		return err
	}
	b := &bench{o: o, e: e, pf: pf}
	syncfs, err := medianSyncfs(e.db.DataDir(), 21)
	if err != nil {
		return err
	}
	b.s, err = e.startSender(ctx)
	if b.s != nil {
		defer func() {
			if serr := b.s.stop(); serr != nil && err == nil {
				err = serr
			}
		}()
	}
	if err != nil {
		return err
	}

	if o.warmup > 0 {
		progress("warm-up: %d replies and the same by the bare loop (untimed)", o.warmup)
		if _, err := b.throughput(ctx, "warmup", o.warmup); err != nil {
			return err
		}
	}
	var runs []runResult
	if o.cpuProfile != "" {
		b.profile, err = os.Create(o.cpuProfile)
		if err != nil {
			return err
		}
		defer b.profile.Close()
	}
	for r := range o.runs {
		progress("run %d of %d: %d replies queued then sent; %d written and sent together; the bare loop", r+1, o.runs, o.n, o.n)
		res, err := b.throughput(ctx, fmt.Sprintf("run%d", r+1), o.n)
		if err != nil {
			return err
		}
		runs = append(runs, res)
	}
	var lat latencyResult
	if o.latency > 0 {
		progress("latency: %d single replies on an idle queue", o.latency)
		if lat, err = b.latencyRun(ctx, o.latency); err != nil {
			return err
		}
	}
	return report(ctx, os.Stdout, b, runs, lat, syncfs)
}

// bench holds what the measurements share.
type bench struct {
	o       options
	e       *env
	s       *sender
	pf      *postfixLog
	profile *os.File
}

// runResult is one throughput run.
type runResult struct {
	written     time.Duration // N desk.Reply calls while the sender is held off
	drain       time.Duration // sender woken on N queued replies -> Postfix logged the last acceptance
	drainConns  int           // submission connections of the drain
	postdesk    time.Duration // writing and sending together: first desk.Reply call -> the last acceptance
	enqueued    time.Duration // ... first desk.Reply call -> the last one returned
	lastSentAt  time.Duration // ... first desk.Reply call -> the latest outbox sent_at
	connections int           // ... submission connections Postdesk opened
	bare        time.Duration // bare loop: dial -> last 250
	bareServer  time.Duration // bare loop: dial -> Postfix logged the last acceptance
	bareConns   int
	// CPU time (user + system) of this process in each phase: Postdesk's
	// own cost, less sensitive to a busy machine than the wall clock. The
	// bare loop's is the go-smtp client's (and the log follower's).
	cpuWritten, cpuDrain, cpuPostdesk, cpuBare time.Duration
}

// throughput measures, on fresh tickets, (1) the sender on a full queue:
// N replies written while another owner holds the mailbox's outbox lease,
// then the lease released and the sender woken; (2) writing and sending
// together: N replies written with the sender running, as agents would;
// (3) the bare loop sending the bytes of (2). Each waits for Postfix to
// deliver the previous one's mail first.
func (b *bench) throughput(ctx context.Context, tag string, n int) (runResult, error) {
	var res runResult
	e := b.e
	tickets, err := e.addTickets(ctx, 2*n, tag)
	if err != nil {
		return res, err
	}
	if err := b.pf.waitIdle(ctx, time.Minute); err != nil {
		return res, err
	}
	first := tag == "run1"
	profiling := b.profile != nil && first
	if profiling {
		if err := pprof.StartCPUProfile(b.profile); err != nil {
			return res, err
		}
		defer pprof.StopCPUProfile()
	}

	// (1) The sender on a full queue.
	if err := e.holdOutbox(ctx); err != nil {
		return res, err
	}
	quiet := desk.New(e.db) // wakes nobody: the sweep would, but the lease is held
	cpu := cpuTime()
	began := time.Now()
	queued, _, err := b.write(ctx, quiet, tickets[:n])
	if err != nil {
		return res, err
	}
	res.written, res.cpuWritten = time.Since(began), cpuTime()-cpu
	if err := e.releaseOutbox(ctx); err != nil {
		return res, err
	}
	if b.o.drainProfile != "" && first {
		if err := startProfile(b.o.drainProfile); err != nil {
			return res, err
		}
	}
	m := b.pf.mark()
	cpu = cpuTime()
	began = time.Now()
	b.s.sender.Wake(e.mb.ID)
	last, err := b.pf.waitAccepted(ctx, 10*time.Minute, m, queued)
	if b.o.drainProfile != "" && first {
		pprof.StopCPUProfile()
	}
	if err != nil {
		return res, err
	}
	res.drain, res.cpuDrain = last.Sub(began), cpuTime()-cpu
	_, _, res.drainConns = b.pf.since(m)
	if err := b.pf.waitIdle(ctx, 5*time.Minute); err != nil {
		return res, err
	}

	// (2) Writing and sending together.
	if b.o.blockProfile != "" && first {
		runtime.SetBlockProfileRate(int(100 * time.Microsecond))
	}
	m = b.pf.mark()
	cpu = cpuTime()
	began = time.Now()
	ids, rows, err := b.write(ctx, b.s.desk, tickets[n:])
	if err != nil {
		return res, err
	}
	res.enqueued = time.Since(began)
	if last, err = b.pf.waitAccepted(ctx, 10*time.Minute, m, ids); err != nil {
		return res, err
	}
	res.cpuPostdesk = cpuTime() - cpu
	if profiling {
		pprof.StopCPUProfile()
	}
	if b.o.blockProfile != "" && first {
		runtime.SetBlockProfileRate(0)
		if err := writeProfile("block", b.o.blockProfile); err != nil {
			return res, err
		}
	}
	res.postdesk = last.Sub(began)
	_, _, res.connections = b.pf.since(m)
	sentAt, err := e.lastSentAt(ctx, rows)
	if err != nil {
		return res, err
	}
	res.lastSentAt = sentAt.Sub(began)

	// (3) The bare loop, on the bytes of (2).
	msgs, err := e.composed(ctx, rows)
	if err != nil {
		return res, err
	}
	if err := b.pf.waitIdle(ctx, 5*time.Minute); err != nil {
		return res, err
	}
	m = b.pf.mark()
	cpu = cpuTime()
	bareBegan := time.Now()
	if res.bare, err = e.bareLoop(ctx, msgs); err != nil {
		return res, err
	}
	if last, err = b.pf.waitAccepted(ctx, 5*time.Minute, m, ids); err != nil {
		return res, err
	}
	res.cpuBare = cpuTime() - cpu
	res.bareServer = last.Sub(bareBegan)
	_, _, res.bareConns = b.pf.since(m)
	return res, b.pf.waitIdle(ctx, 5*time.Minute)
}

// startProfile starts a CPU profile into a new file at path (closed by
// the runtime's profile writer once StopCPUProfile returns: the file stays
// open until the process ends, which is soon).
func startProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return err
	}
	return nil
}

func writeProfile(name, path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := pprof.Lookup(name).WriteTo(f, 0); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// write writes one reply on each ticket, one after another, and returns
// their Message-IDs and message rows.
func (b *bench) write(ctx context.Context, d *desk.Desk, tickets []int64) (map[string]bool, []int64, error) {
	ids := make(map[string]bool, len(tickets))
	rows := make([]int64, 0, len(tickets))
	for i, t := range tickets {
		msg, err := d.Reply(ctx, t, b.e.agent, desk.ReplyInput{Text: replyText(i)})
		if err != nil {
			return nil, nil, err
		}
		ids[msg.MessageID] = true
		rows = append(rows, msg.ID)
	}
	return ids, rows, nil
}

// holdOwner holds the mailbox's outbox lease while a full queue is written.
const holdOwner = "benchreplies/hold"

// holdOutbox takes the mailbox's outbox lease for holdOwner, waiting for
// the sender to release it.
func (e *env) holdOutbox(ctx context.Context) error {
	deadline := time.Now().Add(time.Minute)
	for {
		var ok bool
		err := e.db.Write(ctx, func(tx *store.Tx) (err error) {
			now := time.Now().UTC()
			ok, err = tx.ClaimOutbox(ctx, e.mb.ID, holdOwner, now, now.Add(time.Hour))
			return err
		})
		if err != nil || ok {
			return err
		}
		if time.Now().After(deadline) {
			return errors.New("the sender did not release the outbox lease within a minute")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (e *env) releaseOutbox(ctx context.Context) error {
	return e.db.Write(ctx, func(tx *store.Tx) error { return tx.ReleaseOutbox(ctx, e.mb.ID, holdOwner) })
}

// lastSentAt waits until every one of rows is recorded sent (Postfix's
// log can come before the sender's record) and returns the latest sent_at.
func (e *env) lastSentAt(ctx context.Context, rows []int64) (time.Time, error) {
	var last time.Time
	deadline := time.Now().Add(30 * time.Second)
	for _, id := range rows {
		for {
			item, err := e.db.OutboxItem(ctx, id)
			if err != nil {
				return last, err
			}
			if item.State == store.DeliverySent {
				if item.SentAt.After(last) {
					last = item.SentAt
				}
				break
			}
			if item.State != store.DeliverySending || time.Now().After(deadline) {
				return last, fmt.Errorf("reply %d is %s after Postfix accepted it (last error %q)", id, item.State, item.LastError)
			}
			time.Sleep(time.Millisecond)
		}
	}
	return last, nil
}

// latencyResult is the latency run's samples.
type latencyResult struct {
	total   []time.Duration // desk.Reply called -> Postfix accepted
	reply   []time.Duration // desk.Reply called -> returned (committed)
	sentAt  []time.Duration // desk.Reply called -> sent_at recorded
	connect int             // submission connections opened
}

// latencyRun writes replies one at a time, each after the queue has been
// idle for the gap, and times each until Postfix accepted it.
func (b *bench) latencyRun(ctx context.Context, n int) (latencyResult, error) {
	var res latencyResult
	tickets, err := b.e.addTickets(ctx, n, "latency")
	if err != nil {
		return res, err
	}
	start := b.pf.mark()
	for i, t := range tickets {
		if err := b.pf.waitIdle(ctx, time.Minute); err != nil {
			return res, err
		}
		time.Sleep(b.o.gap)
		m := b.pf.mark()
		began := time.Now()
		msg, err := b.s.desk.Reply(ctx, t, b.e.agent, desk.ReplyInput{Text: replyText(i)})
		if err != nil {
			return res, err
		}
		returned := time.Since(began)
		last, err := b.pf.waitAccepted(ctx, time.Minute, m, map[string]bool{msg.MessageID: true})
		if err != nil {
			return res, err
		}
		sentAt, err := b.e.lastSentAt(ctx, []int64{msg.ID})
		if err != nil {
			return res, err
		}
		res.total = append(res.total, last.Sub(began))
		res.reply = append(res.reply, returned)
		// sent_at is stored in milliseconds: compare with the call's time truncated alike.
		res.sentAt = append(res.sentAt, sentAt.Sub(began.Truncate(time.Millisecond)))
	}
	_, _, res.connect = b.pf.since(start)
	return res, nil
}

// percentile is the p-th percentile (nearest rank) of ds.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := int(p/100*float64(len(s))+0.999999) - 1
	return s[min(max(i, 0), len(s)-1)]
}
