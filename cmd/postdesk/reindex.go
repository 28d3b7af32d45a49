package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"math"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/postdesk/postdesk/internal/store"
)

// reindexBatch is how many tickets' search documents one transaction
// rebuilds: small enough that ingest never waits long behind it.
const reindexBatch = 200

// runReindex builds the search documents of the tickets in the search
// backlog (those from before the search index, migration *_search.sql), or of
// every ticket with --all. Interrupted, it resumes where it stopped.
func runReindex(ctx context.Context, e env, args []string) error {
	var all *bool
	a, _, done, err := start(ctx, e, "reindex", args, func(fs *flag.FlagSet) {
		all = fs.Bool("all", false, "rebuild every ticket's search document, not only those waiting")
	}, nil)
	if done {
		return err
	}
	defer a.close()
	total, err := a.db.SearchBacklog(ctx)
	if *all {
		total, err = a.db.QueueSearchReindex(ctx)
	}
	if err != nil {
		return err
	}
	if total == 0 {
		fmt.Fprintln(e.stdout, "the search index is up to date")
		return nil
	}
	start := time.Now()
	n, err := a.db.ReindexSearch(ctx, reindexBatch, func(done int) {
		if done%(10*reindexBatch) == 0 || done == total {
			fmt.Fprintf(e.stdout, "indexed %d of %d tickets\n", done, total)
		}
	})
	if err != nil {
		return fmt.Errorf("reindex: %w (indexed %d; run it again to go on)", err, n)
	}
	fmt.Fprintf(e.stdout, "indexed %d tickets in %s; the search index is up to date\n", n, time.Since(start).Round(time.Millisecond))
	return nil
}

// The background indexer waits, after bulk ingest queued tickets,
// until ingest has queued none for searchQuiet (the load paused or ended),
// or for searchMaxLag since the first it did not yet build, whichever is
// sooner: during an import a ticket that grows in many batches is built
// once, and under a load that never pauses no ticket is more than about
// searchMaxLag behind.
const (
	searchQuiet  = 500 * time.Millisecond
	searchMaxLag = 30 * time.Second
)

// indexInBackground keeps the search index caught up while serve runs: it
// builds the backlog at start (the tickets of an upgraded database, or of a
// load that stopped before its documents were built), then again each time
// bulk ingest queues the tickets it created or grew (store.Tx.BulkLoad).
// It returns when ctx ends.
func indexInBackground(ctx context.Context, db *store.DB, log *slog.Logger) {
	// A pass that fails (a full disk, a busy database) is tried again,
	// after 1 s, then twice as long each time up to searchMaxLag: no later
	// commit may come to start one.
	pass := func(what string) {
		for wait := time.Second; !reindexInBackground(ctx, db, log, what); wait = min(2*wait, searchMaxLag) {
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
			what = "building the search index again after a failure"
		}
	}
	pass("building the search documents waiting from before this start")
	for {
		select {
		case <-ctx.Done():
			return
		case <-db.SearchQueued():
		}
		deadline := time.Now().Add(searchMaxLag)
		quiet := time.NewTimer(searchQuiet)
	wait:
		for {
			select {
			case <-ctx.Done():
				quiet.Stop()
				return
			case <-db.SearchQueued():
				quiet.Reset(min(searchQuiet, time.Until(deadline)))
			case <-quiet.C:
				break wait
			}
		}
		pass("building the search documents of tickets a bulk load created or grew")
	}
}

// reindexInBackground builds the documents waiting in the search backlog
// when it starts (those queued meanwhile wait for the next pass); it
// returns when they are built (true) or it failed, or ctx ended (false
// only for a failure).
func reindexInBackground(ctx context.Context, db *store.DB, log *slog.Logger, what string) bool {
	total, err := db.SearchBacklog(ctx)
	if err != nil || total == 0 {
		if err != nil && ctx.Err() == nil {
			log.Error("read the search backlog", "err", err)
			return false
		}
		return true
	}
	log.Info(what, "tickets", total)
	start := time.Now()
	n, err := db.ReindexSearchUpTo(ctx, reindexBatch, total, nil)
	if err != nil {
		if ctx.Err() != nil {
			return true
		}
		log.Error("build the search index (tried again soon; postdesk reindex also goes on from here)", "indexed", n, "err", err)
		return false
	}
	log.Info("search index built", "tickets", n, "duration_ms", time.Since(start).Milliseconds())
	return true
}

// searchBacklogGauge is postdesk_search_backlog_tickets: the tickets whose
// search document waits to be built (after an upgrade, or created or grown
// by a bulk load); NaN when the database does not answer.
func searchBacklogGauge(db *store.DB) prometheus.Collector {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "postdesk_search_backlog_tickets",
		Help: "Tickets whose search document waits to be built (their newest words are not yet searchable)."}, func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		n, err := db.SearchBacklog(ctx)
		if err != nil {
			return math.NaN()
		}
		return float64(n)
	})
}
