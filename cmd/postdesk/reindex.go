package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"time"

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

// reindexInBackground drains the search backlog while serve runs (the
// tickets of an upgraded database become searchable without a command);
// it returns when the backlog is empty or ctx ends.
func reindexInBackground(ctx context.Context, db *store.DB, log *slog.Logger) {
	total, err := db.SearchBacklog(ctx)
	if err != nil || total == 0 {
		if err != nil && ctx.Err() == nil {
			log.Error("read the search backlog", "err", err)
		}
		return
	}
	log.Info("building the search index of earlier tickets", "tickets", total)
	start := time.Now()
	n, err := db.ReindexSearch(ctx, reindexBatch, nil)
	if err != nil {
		if ctx.Err() == nil {
			log.Error("build the search index (postdesk reindex goes on from here)", "indexed", n, "err", err)
		}
		return
	}
	log.Info("search index built", "tickets", n, "duration_ms", time.Since(start).Milliseconds())
}
