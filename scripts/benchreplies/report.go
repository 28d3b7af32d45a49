package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Targets of issue 10.
const (
	targetRatio = 1.25
	targetP50   = time.Second
)

// report prints what was measured, where.
func report(ctx context.Context, w io.Writer, b *bench, runs []runResult, lat latencyResult, syncfs time.Duration) error {
	o, e := b.o, b.e
	fmt.Fprintf(w, "\nmachine:  %s, %d CPUs, load average %s\n", cpuModel(), runtime.NumCPU(), loadAverage())
	db, err := describeDB(ctx, b)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "postdesk: %s; outbox sender as serve runs it (River, poll 1 s; woken on commit)\n", db)
	fmt.Fprintf(w, "server:   Postfix submission on %s (%s, SASL XOAUTH2 checked by Dovecot + stand-in introspection), queue on %s\n",
		e.stack.SubmissionAddr, strings.ToUpper(o.security), fsType(e.stack.Dir))
	fmt.Fprintf(w, "          syncfs of the data folder's file system (desk.Reply does one per reply): median %s\n", ms(syncfs))
	if len(runs) > 0 {
		fmt.Fprintf(w, "\n%d replies, one mailbox, one agent writing them one after another; median of %d run(s)\n\n", o.n, len(runs))
		med := func(f func(r runResult) time.Duration) time.Duration {
			ds := make([]time.Duration, len(runs))
			for i, r := range runs {
				ds[i] = f(r)
			}
			return percentile(ds, 50)
		}
		bare := med(func(r runResult) time.Duration { return r.bareServer })
		drain := med(func(r runResult) time.Duration { return r.drain })
		pd := med(func(r runResult) time.Duration { return r.postdesk })
		row := func(name string, d, cpu time.Duration, conns string, note string) {
			c := ""
			if cpu > 0 {
				c = fmt.Sprintf("%.2f", float64(cpu)/float64(o.n)/1e6)
			}
			fmt.Fprintf(w, "%-34s %8.2f %8.0f %8.2fx %6s %7s   %s\n", name, d.Seconds(), float64(o.n)/d.Seconds(),
				d.Seconds()/bare.Seconds(), conns, c, note)
		}
		fmt.Fprintf(w, "%-34s %8s %8s %9s %6s %7s\n", "", "seconds", "msgs/s", "vs bare", "conns", "CPU ms")
		row("bare go-smtp loop", bare, med(func(r runResult) time.Duration { return r.cpuBare }), fmt.Sprint(runs[0].bareConns), "dial -> Postfix logged the last acceptance")
		row("  (client side)", med(func(r runResult) time.Duration { return r.bare }), 0, "", "dial -> the last 250")
		row("postdesk, queued replies sent", drain, med(func(r runResult) time.Duration { return r.cpuDrain }), fmt.Sprint(runs[0].drainConns), "sender woken on N queued replies -> the last acceptance")
		row("postdesk, written and sent", pd, med(func(r runResult) time.Duration { return r.cpuPostdesk }), fmt.Sprint(runs[0].connections), "first desk.Reply call -> the last acceptance")
		row("  writing (sender running)", med(func(r runResult) time.Duration { return r.enqueued }), 0, "", "first desk.Reply call -> the last one returned")
		row("  writing alone (sender held off)", med(func(r runResult) time.Duration { return r.written }), med(func(r runResult) time.Duration { return r.cpuWritten }), "", "N desk.Reply calls, nothing sent meanwhile")
		row("  last sent_at", med(func(r runResult) time.Duration { return r.lastSentAt }), 0, "", "first desk.Reply call -> the latest sent_at recorded")
		fmt.Fprintf(w, "(CPU ms: this process's user+system time per message in that phase)\n")
		for i, r := range runs {
			fmt.Fprintf(w, "  run %d: bare %.2f s; queued sent %.2f s (%.2fx); written and sent %.2f s (%.2fx); writing alone %.2f s\n", i+1,
				r.bareServer.Seconds(), r.drain.Seconds(), r.drain.Seconds()/r.bareServer.Seconds(), r.postdesk.Seconds(),
				r.postdesk.Seconds()/r.bareServer.Seconds(), r.written.Seconds())
		}
		// Ratios: the median of each run's own ratio (a run's figures share its moment's load).
		ratio := func(f func(r runResult) time.Duration) float64 {
			rs := make([]float64, len(runs))
			for i, r := range runs {
				rs[i] = f(r).Seconds() / r.bareServer.Seconds()
			}
			sort.Float64s(rs)
			if len(rs)%2 == 0 {
				return (rs[len(rs)/2-1] + rs[len(rs)/2]) / 2
			}
			return rs[len(rs)/2]
		}
		rq, rw := ratio(func(r runResult) time.Duration { return r.drain }), ratio(func(r runResult) time.Duration { return r.postdesk })
		fmt.Fprintf(w, "ratio, queued replies sent / bare loop: %.2fx (median of the runs' ratios; target <= %.2fx): %s\n", rq, targetRatio, verdict(rq <= targetRatio))
		fmt.Fprintf(w, "ratio, written and sent / bare loop:    %.2fx (median of the runs' ratios; target <= %.2fx): %s\n", rw, targetRatio, verdict(rw <= targetRatio))
	}
	if n := len(lat.total); n > 0 {
		fmt.Fprintf(w, "\nlatency, %d single replies on an idle queue (%s idle before each), %d connections\n", n, o.gap, lat.connect)
		fmt.Fprintf(w, "%-44s %8s %8s %8s %8s\n", "", "p50", "p90", "p99", "max")
		lrow := func(name string, ds []time.Duration) {
			fmt.Fprintf(w, "%-44s %8s %8s %8s %8s\n", name, ms(percentile(ds, 50)), ms(percentile(ds, 90)), ms(percentile(ds, 99)), ms(percentile(ds, 100)))
		}
		lrow("Send (desk.Reply called) -> Postfix accepted", lat.total)
		lrow("  desk.Reply returned (committed)", lat.reply)
		lrow("  sent_at recorded", lat.sentAt)
		fmt.Fprintf(w, "p50 %s (target < %s): %s; p99 %s\n", ms(percentile(lat.total, 50)), targetP50, verdict(percentile(lat.total, 50) < targetP50), ms(percentile(lat.total, 99)))
	}
	return nil
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "MISSED"
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)) }

// describeDB names the database and where it keeps its data.
func describeDB(ctx context.Context, b *bench) (string, error) {
	db := b.e.db
	if db.Dialect() == "sqlite" {
		return fmt.Sprintf("SQLite (WAL, synchronous=NORMAL) in %s (%s)", db.DataDir(), fsType(db.DataDir())), nil
	}
	var version, fsync, commit string
	q := db.SQL()
	if err := q.QueryRowContext(ctx, "SHOW server_version").Scan(&version); err != nil {
		return "", err
	}
	if err := q.QueryRowContext(ctx, "SHOW fsync").Scan(&fsync); err != nil {
		return "", err
	}
	if err := q.QueryRowContext(ctx, "SHOW synchronous_commit").Scan(&commit); err != nil {
		return "", err
	}
	return fmt.Sprintf("PostgreSQL %s (fsync=%s, synchronous_commit=%s), blobs in %s (%s)", version, fsync, commit,
		db.DataDir(), fsType(db.DataDir())), nil
}

func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return runtime.GOARCH
}

func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// fsType names the file system that holds path.
func fsType(path string) string {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return "unknown file system"
	}
	names := map[int64]string{0xEF53: "ext4", 0x01021994: "tmpfs", 0x58465342: "xfs", 0x9123683E: "btrfs",
		0x794c7630: "overlayfs", 0x6969: "nfs"}
	if n, ok := names[int64(st.Type)]; ok {
		return n
	}
	return fmt.Sprintf("file system 0x%x", st.Type)
}
