package desk

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/postdesk/postdesk/internal/imapsync"
	"github.com/postdesk/postdesk/internal/store"
)

// probeTimeout bounds a connection test.
const probeTimeout = 20 * time.Second

// ConnectionError is the cause of a *ValidationError from TestConnection:
// the step that failed and what the server said, if it answered.
type ConnectionError struct {
	Step       imapsync.ProbeStep
	ServerText string // the server's own words ("[AUTHENTICATIONFAILED] Authentication failed.")
	Err        error
}

func (e *ConnectionError) Error() string {
	return fmt.Sprintf("connection test: %s: %v", e.Step, e.Err)
}

func (e *ConnectionError) Unwrap() error { return e.Err }

// TestConnection tries a password mailbox's settings against its IMAP
// server without saving anything: it resolves the host, connects,
// negotiates TLS, reads the greeting, signs in and opens every folder. A
// failure is a *ValidationError about the field to fix, with a
// *ConnectionError inside naming the step. An OAuth mailbox is tested by
// signing in at its provider instead.
func (a *Admin) TestConnection(ctx context.Context, spec MailboxSpec) error {
	if spec.Auth != "password" {
		return invalid("auth", "only a password mailbox can be tested before it is saved: an OAuth mailbox is tested by signing in")
	}
	srv, err := a.resolve(&spec, false)
	if err != nil {
		return err
	}
	login := cmpOr(srv.Username, spec.Address)
	addr := net.JoinHostPort(srv.IMAPHost, strconv.Itoa(srv.IMAPPort))
	cfg := imapsync.Config{Addr: addr, Security: imapsync.Security(srv.IMAPSecurity), TLSConfig: a.ProbeTLS,
		Username: login, Auth: imapsync.AuthMethod(srv.AuthMethod),
		Password: func(context.Context) (string, error) { return spec.Password, nil },
		Folders:  srv.Folders, AfterProcessing: imapsync.Action(srv.AfterProcessing), MoveTo: srv.MoveTo}
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	err = imapsync.Probe(ctx, cfg)
	var pe *imapsync.ProbeError
	if !errors.As(err, &pe) {
		if err != nil {
			return fmt.Errorf("test connection to %s: %w", addr, err)
		}
		return nil
	}
	ce := &ConnectionError{Step: pe.Step, ServerText: pe.ServerText, Err: pe.Err}
	v := &ValidationError{Err: ce}
	switch pe.Step {
	case imapsync.StepDNS:
		v.Field, v.Message = "imap_host", fmt.Sprintf("The host name %s was not found (DNS): check the IMAP server's name.", srv.IMAPHost)
	case imapsync.StepTCP:
		v.Field, v.Message = "imap_port", fmt.Sprintf("Nothing answers at %s (TCP connection refused or timed out): check the host and port, and that a firewall lets Postdesk through.", addr)
	case imapsync.StepTLS:
		v.Field, v.Message = "imap_security", fmt.Sprintf("The TLS handshake with %s failed (%v): check the security setting (TLS is usually port 993, STARTTLS port 143) and the server's certificate.", addr, pe.Err)
	case imapsync.StepGreeting:
		v.Field, v.Message = "imap_port", fmt.Sprintf("%s answered, but not as an IMAP server: is this the IMAP port?", addr)
	case imapsync.StepAuth:
		said := pe.ServerText
		if said == "" {
			said = pe.Err.Error()
		}
		v.Field, v.Message = "password", fmt.Sprintf("The server refused the sign-in as %s. It said: %q. Check the user name and password.", login, said)
	case imapsync.StepFolder:
		v.Field = "folders"
		if pe.Folder == srv.MoveTo && !slices.Contains(srv.Folders, pe.Folder) {
			v.Field = "move_to"
		}
		v.Message = fmt.Sprintf("Signed in, but the folder %q was not found on the server", pe.Folder)
		if pe.ServerText != "" {
			v.Message += fmt.Sprintf(" (it said: %q)", pe.ServerText)
		}
		v.Message += "."
	default:
		v.Message = pe.Error()
	}
	return v
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// SetPaused pauses (no mail is fetched, nothing else changes) or resumes
// fetching a mailbox's mail. A missing mailbox is store.ErrNotFound.
func (a *Admin) SetPaused(ctx context.Context, id int64, paused bool) (store.Mailbox, error) {
	spec, err := a.Spec(ctx, id)
	if err != nil {
		return store.Mailbox{}, err
	}
	if spec.Auth == "" {
		return store.Mailbox{}, invalid("", "mailbox %s has no server settings: there is nothing to pause", spec.Address)
	}
	spec.Disabled = paused
	up, err := a.UpdateMailbox(ctx, id, spec)
	return up.Mailbox, err
}

// RemoveMailboxID is RemoveMailbox by the mailbox's id: a missing (or
// already removed) mailbox is store.ErrNotFound.
func (a *Admin) RemoveMailboxID(ctx context.Context, id int64) (deleted bool, err error) {
	mb, err := a.db.Mailbox(ctx, id)
	if err == nil && mb.Removed() {
		err = store.ErrNotFound
	}
	if err != nil {
		return false, fmt.Errorf("remove mailbox %d: %w", id, err)
	}
	return a.RemoveMailbox(ctx, mb.Address)
}

// changeNote is an UpdateMailbox's entry in the mailbox's activity, or ""
// when nothing an admin reads there changed.
func changeNote(cur, spec MailboxSpec) string {
	switch {
	case cur.Disabled != spec.Disabled && spec.Disabled:
		return "Paused: no mail is fetched until it is resumed"
	case cur.Disabled != spec.Disabled:
		return "Resumed: fetching again from where it stopped"
	}
	var parts []string
	if !slices.Equal(cur.Folders, spec.Folders) && len(spec.Folders) > 0 {
		parts = append(parts, "folders "+strings.Join(spec.Folders, ", "))
	}
	if cur.AfterProcessing != spec.AfterProcessing && spec.AfterProcessing != "" {
		parts = append(parts, "after processing "+spec.AfterProcessing)
	}
	if cur.Name != spec.Name {
		parts = append(parts, "name")
	}
	if cur.Signature != spec.Signature {
		parts = append(parts, "signature")
	}
	if spec.Password != "" {
		parts = append(parts, "password")
	}
	if len(parts) == 0 {
		return ""
	}
	return "Settings changed: " + strings.Join(parts, "; ")
}

// EnsureMailbox returns the mailbox of address, creating it without a
// sign-in or server settings when there is none (an import of .eml or
// mbox files into a mailbox that is not fetched); created says so. A
// removed mailbox is brought back, still without a sign-in.
func (a *Admin) EnsureMailbox(ctx context.Context, address string) (mb store.Mailbox, created bool, err error) {
	address = strings.ToLower(strings.TrimSpace(address))
	err = a.db.Write(ctx, func(tx *store.Tx) error {
		mb, err = tx.MailboxByAddress(ctx, address)
		switch {
		case err == nil && mb.Removed():
			if err := tx.RestoreMailbox(ctx, mb.ID, mb.Name); err != nil {
				return err
			}
			mb.RemovedAt = time.Time{}
			return nil
		case errors.Is(err, store.ErrNotFound):
			if at := strings.LastIndex(address, "@"); at < 1 || at == len(address)-1 {
				return invalid("address", "%q is not an email address", address)
			}
			mb, err = tx.CreateMailbox(ctx, address, "")
			created = err == nil
			return err
		}
		return err
	})
	if err != nil {
		return store.Mailbox{}, false, fmt.Errorf("ensure mailbox %s: %w", address, err)
	}
	return mb, created, nil
}
