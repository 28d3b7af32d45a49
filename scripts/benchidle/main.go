//go:build ignore

// Command benchidle is scripts/bench-idle: N password mailboxes on a private
// Dovecot (internal/mailtest, its limits raised for N sessions), one
// `postdesk serve` syncing all of them with IMAP IDLE, measured while idle
// and then while 200 emails are delivered one at a time to random
// mailboxes.
//
//	go run scripts/benchidle/main.go -bin ./postdesk -n 1000 -idle 5m [-database-url postgres://...]
//
// It prints the time until every mailbox is idling, the average CPU of serve
// while idle (% of one core, from /proc/PID/stat), its RSS (peak, VmHWM,
// and at the end of the idle period), the database connections it holds
// (PostgreSQL), the machine's load average (the machine may be shared), and
// the delivery-to-ticket latency distribution: from the moment Dovecot
// accepted the email over LMTP until its ticket is committed.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/postdesk/postdesk/internal/desk"
	"github.com/postdesk/postdesk/internal/mailtest"
	"github.com/postdesk/postdesk/internal/store"
)

func main() {
	bin := flag.String("bin", "./postdesk", "the postdesk binary")
	n := flag.Int("n", 1000, "mailboxes")
	idle := flag.Duration("idle", 30*time.Second, "how long serve idles while measured (the issue's figure: 5m)")
	emails := flag.Int("emails", 200, "emails delivered one at a time to random mailboxes")
	dbURL := flag.String("database-url", "", "PostgreSQL URL (empty: SQLite in the data folder)")
	work := flag.String("work", "", "work folder (default: a new one in /var/tmp)")
	rate := flag.Int("connect-rate", 0, "POSTDESK_SYNC_CONNECT_RATE (0: serve's default)")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("bench-idle: ")
	defer func() {
		if r := recover(); r != nil {
			if f, ok := r.(failure); ok {
				log.Print(string(f))
				os.Exit(1)
			}
			panic(r)
		}
	}()
	ctx := context.Background()

	raiseLimits(*n)
	if *work == "" {
		d, err := os.MkdirTemp("/var/tmp", "postdesk-idle.")
		check(err)
		defer os.RemoveAll(d)
		*work = d
	}
	users := map[string]string{}
	addrs := make([]string, *n)
	for i := range *n {
		addrs[i] = fmt.Sprintf("support%05d@example.com", i)
		users[addrs[i]] = "pw-" + strconv.Itoa(i)
	}
	began := time.Now()
	stack, err := mailtest.StartStack(ctx, mailtest.Options{PasswordUsers: users, Sessions: *n})
	check(err)
	defer stack.Stop()
	log.Printf("Dovecot for %d sessions started in %s (%s)", *n, time.Since(began).Round(time.Millisecond), stack.IMAPAddr)

	data := filepath.Join(*work, "data")
	db, err := store.Open(ctx, store.Config{DataDir: data, DatabaseURL: *dbURL})
	check(err)
	defer db.Close()
	_, err = db.Migrate(ctx)
	check(err)
	key, err := store.LoadKey(data, "")
	check(err)
	vault, err := store.NewVault(key)
	check(err)
	env := []string{"PATH=" + os.Getenv("PATH"), "POSTDESK_DATA=" + data, "POSTDESK_LISTEN=127.0.0.1:0",
		"POSTDESK_LOG_LEVEL=warn", "POSTDESK_SYNC_OWNER=bench"}
	if *dbURL != "" {
		env = append(env, "POSTDESK_DATABASE_URL="+*dbURL)
	}
	if *rate > 0 {
		env = append(env, "POSTDESK_SYNC_CONNECT_RATE="+strconv.Itoa(*rate))
	}
	// The baseline, in the same run: the same serve with no mailbox.
	baseIdle := min(*idle, time.Minute)
	basePid, baseExited, stopBase := startServe(*bin, env, filepath.Join(*work, "serve-empty.log"))
	time.Sleep(10 * time.Second) // past its start
	bcpu0, bt0 := cpuTime(basePid), time.Now()
	time.Sleep(baseIdle)
	bcpu1, bt1 := cpuTime(basePid), time.Now()
	select {
	case <-baseExited:
		fatalf("the empty serve exited; see %s", filepath.Join(*work, "serve-empty.log"))
	default:
	}
	stopBase()
	basePct := 100 * (bcpu1 - bcpu0).Seconds() / bt1.Sub(bt0).Seconds()
	log.Printf("baseline: serve with no mailbox idled at %.2f%% of one core over %s", basePct, bt1.Sub(bt0).Round(time.Second))

	admin := desk.NewAdmin(db, vault, nil)
	host, portText, _ := strings.Cut(stack.IMAPAddr, ":")
	port, _ := strconv.Atoi(portText)
	zero := 0
	began = time.Now()
	for _, a := range addrs {
		_, err := admin.AddMailbox(ctx, desk.MailboxSpec{Address: a, Auth: "password", IMAPHost: host, IMAPPort: port,
			IMAPSecurity: "none", AuthMethod: "plain", Password: users[a], InitialDays: &zero})
		check(err)
	}
	log.Printf("added %d mailboxes in %s", *n, time.Since(began).Round(time.Millisecond))

	logName := filepath.Join(*work, "serve.log")
	pid, exited, stopServe := startServe(*bin, env, logName)
	defer stopServe()

	// Every mailbox idling (its sync status says so).
	began = time.Now()
	for {
		var idling int
		check(db.SQL().QueryRowContext(ctx, `SELECT COUNT(*) FROM sync_status WHERE state = 'idling'`).Scan(&idling))
		if idling == *n {
			break
		}
		if time.Since(began) > 15*time.Minute {
			fatalf("after 15 minutes %d of %d mailboxes are idling; see %s", idling, *n, logName)
		}
		select {
		case <-exited:
			fatalf("serve exited; see %s", logName)
		default:
		}
		time.Sleep(250 * time.Millisecond)
	}
	allIdle := time.Since(began)
	log.Printf("all %d mailboxes idling %s after serve started", *n, allIdle.Round(time.Millisecond))
	time.Sleep(5 * time.Second) // let the start's garbage settle

	load0 := loadavg()
	cpu0, t0 := cpuTime(pid), time.Now()
	time.Sleep(*idle)
	cpu1, t1 := cpuTime(pid), time.Now()
	load1 := loadavg()
	cpuPct := 100 * (cpu1 - cpu0).Seconds() / t1.Sub(t0).Seconds()
	hwm, rss := status(pid, "VmHWM"), status(pid, "VmRSS")
	conns := -1
	if *dbURL != "" {
		db.SQL().QueryRowContext(ctx, `SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database()`).Scan(&conns)
		conns-- // the bench's own
	}

	// Delivery to ticket, one email at a time.
	var tickets int
	check(db.SQL().QueryRowContext(ctx, `SELECT COUNT(*) FROM tickets`).Scan(&tickets))
	rng := rand.New(rand.NewPCG(1, 2))
	lat := make([]time.Duration, 0, *emails)
	for i := range *emails {
		to := addrs[rng.IntN(len(addrs))]
		raw := fmt.Sprintf("From: Customer %d <c%d@customer.example>\r\nTo: %s\r\nSubject: Idle bench %d\r\nDate: %s\r\n"+
			"Message-ID: <idle-%d-%d@customer.example>\r\n\r\nHello, question %d.\r\n", i, i, to, i, time.Now().Format(time.RFC1123Z), i, time.Now().UnixNano(), i)
		check(stack.Deliver(ctx, to, []byte(raw)))
		sent := time.Now()
		tickets++
		for {
			var got int
			check(db.SQL().QueryRowContext(ctx, `SELECT COUNT(*) FROM tickets`).Scan(&got))
			if got >= tickets {
				break
			}
			if time.Since(sent) > time.Minute {
				fatalf("email %d to %s: no ticket after a minute; see %s", i, to, logName)
			}
			time.Sleep(5 * time.Millisecond)
		}
		lat = append(lat, time.Since(sent))
	}
	slices.Sort(lat)
	pct := func(p float64) time.Duration { return lat[min(len(lat)-1, int(p*float64(len(lat))))] }

	dbName := "SQLite"
	if *dbURL != "" {
		dbName = "PostgreSQL"
	}
	fmt.Printf("\n%d mailboxes, %s, %d CPUs; serve pid %d\n", *n, dbName, runtimeCPUs(), pid)
	fmt.Printf("all idling after:        %s\n", allIdle.Round(100*time.Millisecond))
	fmt.Printf("idle CPU:                %.2f%% of one core over %s\n", cpuPct, t1.Sub(t0).Round(time.Second))
	fmt.Printf("  baseline, no mailbox:  %.2f%% of one core over %s (same binary and database, this run)\n", basePct, bt1.Sub(bt0).Round(time.Second))
	fmt.Printf("RSS:                     peak %.0f MB, at the end of idle %.0f MB\n", hwm/1024, rss/1024)
	if conns >= 0 {
		fmt.Printf("database connections:    %d\n", conns)
	}
	fmt.Printf("load average:            %s at the start of idle, %s at its end\n", load0, load1)
	fmt.Printf("delivery -> ticket (%d): p50 %s  p90 %s  p99 %s  max %s\n", len(lat), ms(pct(0.5)), ms(pct(0.9)), ms(pct(0.99)), ms(lat[len(lat)-1]))
	fmt.Printf("distribution:           ")
	edges := []time.Duration{250 * time.Millisecond, 500 * time.Millisecond, 750 * time.Millisecond, time.Second, 1500 * time.Millisecond, 2 * time.Second}
	prev := time.Duration(0)
	for _, e := range append(edges, time.Hour) {
		c := 0
		for _, l := range lat {
			if l >= prev && l < e {
				c++
			}
		}
		label := "<" + ms(e)
		if e == time.Hour {
			label = ">=" + ms(prev)
		}
		fmt.Printf(" %s:%d", label, c)
		prev = e
	}
	fmt.Println()
}

func ms(d time.Duration) string { return strconv.FormatInt(d.Milliseconds(), 10) + "ms" }

// raiseLimits lifts the open-file limit (Dovecot, started from here,
// inherits it) and the inotify instances Dovecot's IDLE needs; it fails
// loudly when it cannot (Dovecot would fall back to 30 s polling).
func raiseLimits(n int) {
	var r syscall.Rlimit
	check(syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r))
	r.Cur = r.Max
	check(syscall.Setrlimit(syscall.RLIMIT_NOFILE, &r))
	if r.Cur < uint64(2*n+1000) {
		fatalf("open-file limit %d is too low for %d sessions (raise the hard limit)", r.Cur, n)
	}
	const path = "/proc/sys/fs/inotify/max_user_instances"
	b, err := os.ReadFile(path)
	check(err)
	if cur, _ := strconv.Atoi(strings.TrimSpace(string(b))); cur < 8192 {
		if err := os.WriteFile(path, []byte("8192"), 0o644); err != nil {
			fatalf("raise fs.inotify.max_user_instances to 8192 (as root): %v", err)
		}
	}
}

func cpuTime(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	check(err)
	f := strings.Fields(string(b)[strings.LastIndexByte(string(b), ')')+2:])
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / 100 // USER_HZ
}

func status(pid int, field string) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	check(err)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, _ := strconv.ParseFloat(strings.Fields(v)[0], 64)
			return kb
		}
	}
	return 0
}

func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func runtimeCPUs() int {
	b, _ := os.ReadFile("/proc/cpuinfo")
	return strings.Count(string(b), "processor\t:")
}

// failure ends main through its deferred cleanups (Dovecot and serve are
// stopped), unlike log.Fatal.
type failure string

func fatalf(format string, args ...any) { panic(failure(fmt.Sprintf(format, args...))) }

func check(err error) {
	if err != nil {
		panic(failure(err.Error()))
	}
}

// startServe starts `postdesk serve` with env, logging to logName; stop
// ends it (SIGTERM) and waits for it.
func startServe(bin string, env []string, logName string) (pid int, exited <-chan struct{}, stop func()) {
	logf, err := os.Create(logName)
	check(err)
	serve := exec.Command(bin, "serve")
	serve.Env, serve.Stdout, serve.Stderr = env, logf, logf
	check(serve.Start())
	done := make(chan struct{})
	go func() { serve.Wait(); logf.Close(); close(done) }()
	var once sync.Once
	return serve.Process.Pid, done, func() {
		once.Do(func() { serve.Process.Signal(syscall.SIGTERM); <-done })
	}
}
