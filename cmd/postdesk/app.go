package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"

	"github.com/postdesk/postdesk/internal/config"
	"github.com/postdesk/postdesk/internal/jobs"
	"github.com/postdesk/postdesk/internal/store"
)

// app is what most commands need: the configuration, a logger and the
// migrated database.
type app struct {
	cfg *config.Config
	log *slog.Logger
	db  *store.DB
}

// withConfig declares the configuration flags on fs; call the returned
// function after parsing.
func withConfig(e env, fs *flag.FlagSet) func() (*config.Config, error) {
	return config.Flags(fs, e.getenv)
}

// open loads the database and brings its schema (and the job engine's) up
// to date. A schema newer than this binary is refused.
func open(ctx context.Context, e env, cfg *config.Config) (*app, error) {
	log := cfg.Logger(e.stderr)
	db, err := store.Open(ctx, store.Config{DataDir: cfg.DataDir, DatabaseURL: cfg.DatabaseURL, Logger: log})
	if err != nil {
		return nil, err
	}
	if _, err := db.Migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	if err := jobs.Migrate(ctx, db, log); err != nil {
		db.Close()
		return nil, err
	}
	return &app{cfg: cfg, log: log, db: db}, nil
}

func (a *app) close() { a.db.Close() }

func runMigrate(ctx context.Context, e env, args []string) error {
	fs := newFlags(e, "migrate")
	load := withConfig(e, fs)
	if done, err := parse(fs, args); done {
		return err
	}
	cfg, err := load()
	if err != nil {
		return err
	}
	a, err := open(ctx, e, cfg)
	if err != nil {
		return err
	}
	defer a.close()
	v, err := a.db.SchemaVersion()
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "database (%s) is at schema version %d\n", a.db.Dialect(), v)
	return nil
}
