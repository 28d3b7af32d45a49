package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/postdesk/postdesk/internal/desk"
	"github.com/postdesk/postdesk/internal/mailsync"
	"github.com/postdesk/postdesk/internal/oauth"
	"github.com/postdesk/postdesk/internal/store"
)

func runMailbox(ctx context.Context, e env, args []string) error {
	sub := ""
	if len(args) > 0 {
		sub, args = args[0], args[1:]
	}
	switch sub {
	case "add":
		return mailboxAdd(ctx, e, args)
	case "update":
		return mailboxUpdate(ctx, e, args)
	case "list":
		return mailboxList(ctx, e, args)
	case "show":
		return mailboxShow(ctx, e, args)
	case "remove":
		return mailboxRemove(ctx, e, args)
	case "-h", "--help":
		newFlags(e, "mailbox").Usage()
		return nil
	}
	newFlags(e, "mailbox").Usage()
	return errors.New("mailbox: say add, update, list, show or remove")
}

// mailboxApp opens the database and the admin operations with the
// configured providers; create lets it make the database (mailbox add).
// check is as for start (nil: the subcommand reads its arguments itself).
func mailboxApp(ctx context.Context, e env, args []string, declare func(fs *flag.FlagSet), create bool, check func(*flag.FlagSet) error) (*app, *desk.Admin, []string, bool, error) {
	a, fs, done, err := begin(ctx, e, "mailbox", args, declare, check, create)
	if done {
		return nil, nil, nil, true, err
	}
	cfg := a.cfg
	vault, err := loadVault(cfg)
	if err != nil {
		a.close()
		return nil, nil, nil, true, err
	}
	providers := configuredProviders(cfg)
	lookup := func(name string) (oauth.Provider, bool) {
		for _, p := range providers {
			if p.Name == name {
				return p, true
			}
		}
		return oauth.Provider{}, false
	}
	return a, desk.NewAdmin(a.db, vault, lookup), fs.Args(), false, nil
}

// mailboxFlags are the settings flags of mailbox add and update.
type mailboxFlags struct {
	spec                       desk.MailboxSpec
	folders, initial, maxAge   string
	passwordStdin, disable, on bool
}

func (m *mailboxFlags) declare(fs *flag.FlagSet, update bool) {
	if !update {
		fs.StringVar(&m.spec.Address, "address", "", "the support address (required)")
	}
	fs.StringVar(&m.spec.Name, "name", "", "display name")
	fs.StringVar(&m.spec.Auth, "auth", "", "how it signs in: microsoft, google (OAuth providers) or password (required)")
	fs.StringVar(&m.spec.IMAPHost, "imap-host", "", "IMAP server (default: the provider's)")
	fs.IntVar(&m.spec.IMAPPort, "imap-port", 0, "IMAP port (default 993 for tls, 143 otherwise)")
	fs.StringVar(&m.spec.IMAPSecurity, "imap-security", "", "tls, starttls or none (none only to 127.0.0.1)")
	fs.StringVar(&m.spec.SMTPHost, "smtp-host", "", "SMTP server for replies (default: the provider's)")
	fs.IntVar(&m.spec.SMTPPort, "smtp-port", 0, "SMTP port")
	fs.StringVar(&m.spec.SMTPSecurity, "smtp-security", "", "tls, starttls or none")
	fs.StringVar(&m.spec.AuthMethod, "auth-method", "", "xoauth2 or oauthbearer (OAuth); plain or login (password)")
	fs.StringVar(&m.spec.Username, "username", "", "login name when it is not the address (password mailboxes)")
	fs.BoolVar(&m.passwordStdin, "password-stdin", false, "read the password from stdin (password mailboxes)")
	fs.StringVar(&m.folders, "folders", "INBOX", "comma-separated folders to fetch")
	fs.StringVar(&m.spec.AfterProcessing, "after", "leave", "after a message is ingested: leave, seen, or move")
	fs.StringVar(&m.spec.MoveTo, "move-to", "", "folder to move processed mail to (with --after move)")
	fs.StringVar(&m.spec.FetchTransport, "fetch-transport", "imap", "fetch over imap, or graph (Microsoft Graph, Microsoft 365 only; see docs/graph.md)")
	fs.StringVar(&m.spec.SendTransport, "send-transport", "smtp", "send over smtp, or graph (Microsoft Graph sendMail, Microsoft 365 only)")
	fs.StringVar(&m.initial, "initial-days", "", "on first connect, import the last N days (default 14; 0 = only new mail)")
	fs.StringVar(&m.maxAge, "max-age-days", "", "after an outage, catch up on mail up to N days old (default 90)")
	if update {
		fs.BoolVar(&m.disable, "disable", false, "stop fetching (settings and checkpoints are kept)")
		fs.BoolVar(&m.on, "enable", false, "fetch again")
	}
}

// apply copies the flags that were given (all of them for add) onto spec.
func (m *mailboxFlags) apply(e env, fs *flag.FlagSet, spec *desk.MailboxSpec, all bool) error {
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	set := func(name string) bool { return all || given[name] }
	if set("name") {
		spec.Name = m.spec.Name
	}
	if set("auth") {
		spec.Auth = m.spec.Auth
	}
	if set("imap-host") {
		spec.IMAPHost = m.spec.IMAPHost
	}
	if set("imap-port") {
		spec.IMAPPort = m.spec.IMAPPort
	}
	if set("imap-security") {
		spec.IMAPSecurity = m.spec.IMAPSecurity
	}
	if set("smtp-host") {
		spec.SMTPHost = m.spec.SMTPHost
	}
	if set("smtp-port") {
		spec.SMTPPort = m.spec.SMTPPort
	}
	if set("smtp-security") {
		spec.SMTPSecurity = m.spec.SMTPSecurity
	}
	if set("auth-method") {
		spec.AuthMethod = m.spec.AuthMethod
	}
	if set("username") {
		spec.Username = m.spec.Username
	}
	if set("after") {
		spec.AfterProcessing = m.spec.AfterProcessing
	}
	if set("move-to") {
		spec.MoveTo = m.spec.MoveTo
	}
	if set("fetch-transport") {
		spec.FetchTransport = m.spec.FetchTransport
	}
	if set("send-transport") {
		spec.SendTransport = m.spec.SendTransport
	}
	if set("folders") {
		spec.Folders = nil
		for _, f := range strings.Split(m.folders, ",") {
			if f = strings.TrimSpace(f); f != "" {
				spec.Folders = append(spec.Folders, f)
			}
		}
		if len(spec.Folders) == 0 {
			// Taken as "the default" it would quietly replace the folders
			// set before with INBOX alone.
			return &desk.ValidationError{Field: "folders", Message: "--folders names no folder: give at least one, such as INBOX"}
		}
	}
	var err error
	if set("initial-days") {
		if spec.InitialDays, err = desk.ParseDays(m.initial); err != nil {
			return err
		}
	}
	if set("max-age-days") {
		if spec.MaxAgeDays, err = desk.ParseDays(m.maxAge); err != nil {
			return err
		}
	}
	if m.disable && m.on {
		return &desk.ValidationError{Message: "--disable and --enable together"}
	}
	if m.disable || m.on {
		spec.Disabled = m.disable
	}
	if m.passwordStdin {
		if spec.Password, err = readPassword(e); err != nil {
			return err
		}
		if spec.Password == "" {
			return &desk.ValidationError{Field: "password", Message: "no password on stdin"}
		}
	}
	return nil
}

func mailboxAdd(ctx context.Context, e env, args []string) error {
	var m mailboxFlags
	var fset *flag.FlagSet
	a, admin, _, done, err := mailboxApp(ctx, e, args, func(fs *flag.FlagSet) { fset = fs; m.declare(fs, false) }, true, noArgs)
	if done {
		return err
	}
	defer a.close()
	spec := desk.MailboxSpec{Address: m.spec.Address}
	if err := m.apply(e, fset, &spec, true); err != nil {
		return applyError("mailbox add", err)
	}
	mb, err := admin.AddMailbox(ctx, spec)
	if err != nil {
		return flagError("mailbox add", err)
	}
	fmt.Fprintf(e.stdout, "added mailbox %s (id %d)\n", mb.Address, mb.ID)
	if spec.Auth != "password" {
		fmt.Fprintf(e.stdout, "next: connect it in Admin -> Emails (%s/admin/emails): an admin signs in at %s\n", a.cfg.BaseURL, spec.Auth)
	}
	return nil
}

// mailboxUpdate changes the settings given as flags and keeps the rest,
// with the mailbox's checkpoints: a new password after the old one was
// refused resumes fetching where it stopped.
func mailboxUpdate(ctx context.Context, e env, args []string) error {
	var m mailboxFlags
	var fset *flag.FlagSet
	settings := map[string]bool{} // the configuration's flags, declared before the mailbox's
	a, admin, rest, done, err := mailboxApp(ctx, e, args, func(fs *flag.FlagSet) {
		fset = fs
		fs.VisitAll(func(f *flag.Flag) { settings[f.Name] = true })
		m.declare(fs, true)
	}, false, nil)
	if done {
		return err
	}
	defer a.close()
	if len(rest) != 1 {
		return errors.New("mailbox update: name one ADDRESS (flags first)")
	}
	changes := 0
	fset.Visit(func(f *flag.Flag) {
		if !settings[f.Name] {
			changes++
		}
	})
	if changes == 0 {
		return errors.New("mailbox update: nothing to change: give the settings to change as flags before the address (see postdesk mailbox --help)")
	}
	mb, err := a.db.MailboxByAddress(ctx, rest[0])
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("mailbox update: there is no mailbox %s", rest[0])
	}
	if err != nil {
		return err
	}
	spec, err := admin.Spec(ctx, mb.ID)
	if err != nil {
		return err
	}
	if err := m.apply(e, fset, &spec, false); err != nil {
		return applyError("mailbox update", err)
	}
	up, err := admin.UpdateMailbox(ctx, mb.ID, spec)
	if err != nil {
		return flagError("mailbox update", err)
	}
	fmt.Fprintf(e.stdout, "updated mailbox %s\n", mb.Address)
	if up.SignInForgotten {
		fmt.Fprintf(e.stdout, "sign-in forgotten: %s\nnext: reconnect it in Admin -> Emails (%s/admin/emails)\n", up.Notice, a.cfg.BaseURL)
	}
	return nil
}

// applyError names the command on an error of reading its flags.
func applyError(cmd string, err error) error {
	var v *desk.ValidationError
	if errors.As(err, &v) {
		return flagError(cmd, err)
	}
	return fmt.Errorf("%s: %w", cmd, err)
}

// flagError says which flag a refused setting came from: desk names the
// field as the API does ("imap_host"), the CLI's flag is --imap-host.
func flagError(cmd string, err error) error {
	var v *desk.ValidationError
	if !errors.As(err, &v) {
		return err
	}
	flagName := map[string]string{"auth_method": "auth-method", "after_processing": "after", "initial_days": "initial-days",
		"max_age_days": "max-age-days", "move_to": "move-to", "password": "password-stdin"}[v.Field]
	if flagName == "" {
		flagName = strings.ReplaceAll(v.Field, "_", "-")
	}
	if flagName == "" {
		return fmt.Errorf("%s: %s", cmd, v.Message)
	}
	return fmt.Errorf("%s: --%s: %s", cmd, flagName, v.Message)
}

func mailboxList(ctx context.Context, e env, args []string) error {
	a, _, _, done, err := mailboxApp(ctx, e, args, nil, false, noArgs)
	if done {
		return err
	}
	defer a.close()
	all, err := a.db.Mailboxes(ctx)
	if err != nil {
		return err
	}
	var mbs []store.Mailbox
	for _, mb := range all {
		if !mb.Removed() { // kept for its tickets only
			mbs = append(mbs, mb)
		}
	}
	if len(mbs) == 0 {
		fmt.Fprintln(e.stdout, "no mailboxes yet: add one with 'postdesk mailbox add'")
		return nil
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tADDRESS\tSIGN-IN\tSTATE\tSERVER\tLAST SUCCESS")
	for _, mb := range mbs {
		d := describe(ctx, a.db, mb)
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", mb.ID, mb.Address, d.signIn, d.state, d.server, d.lastSuccess)
	}
	return tw.Flush()
}

func mailboxShow(ctx context.Context, e env, args []string) error {
	a, _, rest, done, err := mailboxApp(ctx, e, args, nil, false, nil)
	if done {
		return err
	}
	defer a.close()
	if len(rest) != 1 {
		return errors.New("mailbox show: name one ADDRESS")
	}
	mb, err := a.db.MailboxByAddress(ctx, rest[0])
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("mailbox show: there is no mailbox %s", rest[0])
	}
	if err != nil {
		return err
	}
	d := describe(ctx, a.db, mb)
	fmt.Fprintf(e.stdout, "address:   %s\nname:      %s\nsign-in:   %s\nstate:     %s\nserver:    %s\n", mb.Address, mb.Name, d.signIn, d.state, d.server)
	if srv, err := a.db.MailboxServer(ctx, mb.ID); err == nil {
		sending := "none (replies cannot be sent)"
		switch {
		case srv.SendTransport == store.TransportGraph:
			sending = "Microsoft Graph"
		case srv.SMTPHost != "":
			sending = fmt.Sprintf("%s:%d (%s)", srv.SMTPHost, srv.SMTPPort, srv.SMTPSecurity)
		}
		fmt.Fprintf(e.stdout, "sending:   %s\n", sending)
		fmt.Fprintf(e.stdout, "folders:   %s\nafter:     %s %s\ncatch-up:  first connect %d days, after outages up to %d days\n",
			strings.Join(srv.Folders, ", "), srv.AfterProcessing, srv.MoveTo, srv.InitialDays, srv.MaxAgeDays)
		for _, f := range srv.Folders {
			if cp, err := mailsync.IMAPCheckpoint(ctx, a.db, mb.ID, f); err == nil && cp.UIDValidity != 0 {
				fmt.Fprintf(e.stdout, "checkpoint %s: uidvalidity %d, last uid %d\n", f, cp.UIDValidity, cp.LastUID)
			}
		}
	}
	fmt.Fprintf(e.stdout, "last sync: %s\n", d.lastSuccess)
	if d.lastError != "" {
		fmt.Fprintf(e.stdout, "last error: %s\n", d.lastError)
	}
	return nil
}

type mailboxDescription struct{ signIn, state, server, lastSuccess, lastError string }

// describe says how a mailbox stands, its state in the words of the API's
// health (desk.HealthOf, as Admin -> Emails decides it: "failing" for a
// mailbox whose fetching fails, not the "ok" of its sign-in alone).
func describe(ctx context.Context, db *store.DB, mb store.Mailbox) mailboxDescription {
	d := mailboxDescription{signIn: "none (import only)", state: "-", server: "-", lastSuccess: "never"}
	au, err := db.MailboxAuth(ctx, mb.ID)
	hasAuth := err == nil
	if hasAuth {
		d.signIn = string(au.Kind)
		if au.Provider != "" {
			d.signIn += " (" + au.Provider + ")"
		}
	}
	srv, err := db.MailboxServer(ctx, mb.ID)
	hasServer := err == nil
	if hasServer {
		d.server = fmt.Sprintf("%s:%d %s %s", srv.IMAPHost, srv.IMAPPort, srv.IMAPSecurity, srv.AuthMethod)
	}
	st, err := db.SyncStatus(ctx, mb.ID)
	if err == nil {
		if !st.LastSuccessAt.IsZero() {
			d.lastSuccess = st.LastSuccessAt.Format(time.RFC3339)
		}
		d.lastError = st.LastError
	}
	if hasAuth {
		d.state = strings.ReplaceAll(desk.HealthOf(au, hasAuth, !hasServer || srv.Enabled, st).String(), "_", " ")
		if au.Error != "" {
			d.state += ": " + au.Error
		}
	}
	return d
}

func mailboxRemove(ctx context.Context, e env, args []string) error {
	a, admin, rest, done, err := mailboxApp(ctx, e, args, nil, false, nil)
	if done {
		return err
	}
	defer a.close()
	if len(rest) != 1 {
		return errors.New("mailbox remove: name one ADDRESS")
	}
	deleted, err := admin.RemoveMailbox(ctx, rest[0])
	if err != nil {
		return err
	}
	if deleted {
		fmt.Fprintf(e.stdout, "removed mailbox %s\n", rest[0])
	} else {
		fmt.Fprintf(e.stdout, "stopped fetching %s and forgot its credentials; its tickets stay\n", rest[0])
	}
	return nil
}
