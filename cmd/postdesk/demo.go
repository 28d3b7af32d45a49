package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/postdesk/postdesk/internal/config"
	"github.com/postdesk/postdesk/internal/demo"
	"github.com/postdesk/postdesk/internal/store"
)

// demoOptions configure runDemoWith.
type demoOptions struct {
	listen    string
	dataDir   string // empty: a new temporary folder, removed at exit
	mailEvery time.Duration
	// ready, when set, is called once the demo is provisioned, before
	// Postdesk starts serving (tests use it).
	ready func(*demoRun)
}

// demoRun is a running demo, for tests.
type demoRun struct {
	env     *demo.Env
	app     *app
	baseURL string
	prov    demo.Provisioned
}

func runDemo(ctx context.Context, e env, args []string) error {
	fs := newFlags(e, "demo")
	listen := fs.String("listen", "127.0.0.1:8080", "address the web server listens on (keep it on loopback: the demo's users share a known password)")
	data := fs.String("data", "", "data folder to use and keep (default: a new temporary folder, removed at exit)")
	every := fs.Duration("mail-every", 30*time.Second, "how often a new sample customer email arrives (0: never)")
	if done, err := parse(fs, args); done {
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	if err := config.CheckListen(*listen); err != nil {
		return fmt.Errorf("--listen %s: %w", *listen, err)
	}
	if *every < 0 {
		return fmt.Errorf("--mail-every %s: must be 0 (no sample mail) or a positive duration such as 30s", *every)
	}
	return runDemoWith(ctx, e, demoOptions{listen: *listen, dataDir: *data, mailEvery: *every})
}

// runDemoWith runs serve's code against the demo's world: the stand-in
// Microsoft sign-in as the Microsoft authority, the in-memory mail server
// as every mailbox's IMAP server, and a data folder of its own.
func runDemoWith(ctx context.Context, e env, o demoOptions) (err error) {
	keep := o.dataDir != ""
	if !keep {
		dir, err := os.MkdirTemp("", "postdesk-demo-")
		if err != nil {
			return fmt.Errorf("demo: create a data folder: %w", err)
		}
		o.dataDir = dir
		defer func() {
			if rerr := os.RemoveAll(dir); rerr != nil {
				err = errors.Join(err, fmt.Errorf("demo: remove the data folder: %w", rerr))
			}
		}()
	}
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", o.listen, err)
	}
	defer ln.Close() // a no-op once served
	baseURL := demoBaseURL(ln.Addr().(*net.TCPAddr))
	cfg, err := demoConfig(e, o.dataDir, ln.Addr().String(), baseURL)
	if err != nil {
		return err
	}
	log := cfg.Logger(e.stderr)

	// A kept folder's demo listens where it did last time, when it can:
	// its mailboxes' server settings then stay as they were (new ones
	// would need every mailbox signed in again, with a notice each).
	portsFile := filepath.Join(o.dataDir, "demo-ports.json")
	var ports demo.Ports
	if b, err := os.ReadFile(portsFile); keep && err == nil {
		json.Unmarshal(b, &ports) // unreadable: new ports
	}
	world, err := demo.Start(demo.Options{RedirectURL: baseURL + "/oauth/callback", Logger: log, Ports: ports})
	if err != nil {
		return err
	}
	if keep {
		if b, err := json.Marshal(world.Ports()); err == nil {
			os.WriteFile(portsFile, b, 0o600) // without it, the next run takes new ports
		}
	}
	defer func() { err = errors.Join(err, world.Stop()) }()
	cfg.MicrosoftClientID, cfg.MicrosoftClientSecret = world.ClientID, world.ClientSecret
	cfg.MicrosoftAuthority = world.Authority
	// The demo's mailboxes live on its own mail server, not Microsoft's.
	cfg.OAuthAllowedHosts = []string{world.MailHost}

	a, err := open(ctx, e, cfg)
	if err != nil {
		return err
	}
	defer a.close()
	vault, err := loadVault(cfg)
	if err != nil {
		return err
	}
	prov, err := world.Provision(ctx, demo.Postdesk{DB: a.db, Vault: vault, Providers: configuredProviders(cfg),
		RedirectURL: baseURL + "/oauth/callback", SessionTTL: cfg.SessionTTL, Logger: a.log})
	if err != nil {
		return fmt.Errorf("demo: set up: %w", err)
	}
	srv, err := newServer(a)
	if err != nil {
		return err
	}
	printWelcome(e.stdout, world, prov, baseURL, o, keep, ln.Addr().(*net.TCPAddr).IP.IsLoopback())
	if o.ready != nil {
		o.ready(&demoRun{env: world, app: a, baseURL: baseURL, prov: prov})
	}

	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		world.LiveMail(ctx, o.mailEvery)
	}()
	err = srv.run(ctx, ln)
	wg.Wait()
	return err
}

// demoConfig is the configuration of serve for the demo: defaults, except
// the data folder, the address, and the log settings of the environment.
// Nothing else is read from POSTDESK_* variables, so a database or a key
// meant for a real Postdesk is never touched.
func demoConfig(e env, dataDir, listen, baseURL string) (*config.Config, error) {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	load := config.Flags(fs, func(name string) string {
		if name == config.Env("log-level") || name == config.Env("log-format") {
			return e.getenv(name)
		}
		return ""
	})
	if err := fs.Parse([]string{"--data", dataDir, "--listen", listen, "--base-url", baseURL}); err != nil {
		return nil, err
	}
	return load()
}

// demoBaseURL is the URL of the listener: an unspecified address (0.0.0.0)
// is reached as localhost.
func demoBaseURL(a *net.TCPAddr) string {
	host := a.IP.String()
	if a.IP.IsUnspecified() {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, fmt.Sprint(a.Port))
}

func printWelcome(w io.Writer, world *demo.Env, prov demo.Provisioned, baseURL string, o demoOptions, keep, loopback bool) {
	d := world.Domain
	fmt.Fprintf(w, "\nPostdesk demo is running: open %s\n\n", baseURL)
	fmt.Fprintf(w, "  Sign in as %s, password %s (the agent %s has the same).\n\n", d.Admin, demo.Password, d.Agent)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, addr := range d.Mailboxes() {
		st := prov.Statuses[addr]
		var state string
		switch st.State {
		case store.AuthOK:
			state = "connected"
		case store.AuthExpiring:
			state = fmt.Sprintf("expiring: re-authentication due %s (in %d days)", st.Deadline.Local().Format("Mon 2 Jan"),
				int(time.Until(st.Deadline).Round(time.Hour).Hours()/24))
		case store.AuthNeedsReauth:
			state = "needs re-authentication (" + st.Code + ", revoked at the stand-in); " + fmt.Sprint(prov.Seeded[addr]) + " emails wait on the server"
			if prov.HeldReply != 0 {
				state += ", 1 reply is held"
			}
		default:
			state = string(st.State)
		}
		fmt.Fprintf(tw, "  %s\t%s\n", addr, state)
	}
	tw.Flush()
	fmt.Fprintf(w, "\nTry:\n")
	fmt.Fprintf(w, "  - %s is about to expire: Admin → Emails → Reauthenticate, pick %s on the stand-in page.\n", d.Billing, d.Billing)
	fmt.Fprintf(w, "  - %s has expired: reauthenticate it and watch the waiting mail arrive as tickets, and Maria's held reply go out.\n", d.Sales)
	fmt.Fprintf(w, "  - Answer a ticket: the reply goes out through the demo's mail server (\"demo: mail delivered\" below),\n")
	fmt.Fprintf(w, "    and the customer answers it a few seconds later, on the same ticket.\n")
	if o.mailEvery > 0 {
		fmt.Fprintf(w, "  - A customer email arrives every %s, to the mailbox it belongs in.\n", o.mailEvery)
	}
	fmt.Fprintf(w, "\n  Stand-in Microsoft sign-in  %s\n", world.SignInURL())
	fmt.Fprintf(w, "  Mail server (IMAP, XOAUTH2) %s\n", net.JoinHostPort(world.MailHost, fmt.Sprint(world.MailPort)))
	fmt.Fprintf(w, "  Mail server (SMTP, XOAUTH2) %s\n", net.JoinHostPort(world.MailHost, fmt.Sprint(world.SMTPPort)))
	if keep {
		fmt.Fprintf(w, "  Data                        %s (kept)\n", o.dataDir)
	} else {
		fmt.Fprintf(w, "  Data                        %s (removed at exit; --data DIR keeps it)\n", o.dataDir)
	}
	if !loopback {
		fmt.Fprintf(w, "\n  Warning: %s is reachable from other machines, and the demo's password is public.\n", baseURL)
	}
	fmt.Fprintf(w, "\nCtrl-C stops everything.\n\n")
}
