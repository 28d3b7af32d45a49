package mailtest

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/postdesk/postdesk/internal/fakeidp"
)

// Debian's paths of the binaries the stack runs (the Postfix configuration
// names its daemon and command folders too).
const (
	dovecotBin = "/usr/sbin/dovecot"
	doveadmBin = "/usr/bin/doveadm"
	postfixBin = "/usr/sbin/postfix"
)

// InstallCommand installs what a stack needs on Debian or Ubuntu (create
// /usr/sbin/policy-rc.d first, see MAILSTACK.md, or the packages start
// system-wide daemons).
const InstallCommand = "apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends " +
	"dovecot-imapd dovecot-lmtpd dovecot-submissiond postfix"

// ClientID is the app registration under which Token issues access tokens.
// StartStack adds it to the IdP it serves.
const ClientID = "mailtest"

// tokenScopes are the scopes of the tokens Token issues.
var tokenScopes = []string{
	"https://outlook.office.com/IMAP.AccessAsUser.All",
	"https://outlook.office.com/SMTP.Send",
	"offline_access",
}

// ErrNotInstalled is returned by StartStack (and makes Start skip the test,
// or fail it when the CI variable is set) when this machine cannot run the
// stack: Dovecot or Postfix missing, or not running as root.
var ErrNotInstalled = errors.New("mailtest: mail stack not available")

// Options configures a stack. The zero value starts Dovecot alone, without
// TLS, with its own fake identity provider.
type Options struct {
	// Postfix also starts Postfix (SMTPAddr, SubmissionAddr): about 2 s more.
	Postfix bool
	// TLS adds a self-signed certificate (see Stack.TLSConfig): Dovecot
	// offers STARTTLS and listens on IMAPSAddr; Postfix offers STARTTLS and
	// listens on SubmissionsAddr (implicit TLS).
	TLS bool
	// IntrospectionURL is the RFC 7662 endpoint Dovecot validates bearer
	// tokens with. Empty: the stack serves IdP (or a new fakeidp) on a free
	// loopback port and uses its /introspect.
	IntrospectionURL string
	// IdP is the identity provider to serve when IntrospectionURL is empty,
	// for tests that also drive its clock or its OAuth endpoints. Nil: a new
	// one. The stack adds the ClientID app to it.
	IdP *fakeidp.IdP
	// PasswordUsers are users (address -> password) who log in with a
	// password; see also Stack.AddPasswordUser.
	PasswordUsers map[string]string
	// SendAsCheck makes Postfix's submission refuse a MAIL FROM that is not
	// the login (553 5.7.1), as Microsoft's SendAs permission does.
	SendAsCheck bool
	// Sessions is how many IMAP sessions Dovecot must hold at once (0: up
	// to 200, one process each). Above that, each imap process serves up to
	// 100 sessions (client_limit), and the process, client and anvil
	// limits grow to match; the caller raises fs.inotify.max_user_instances
	// and its open-file limit (see shared/MAILSTACK.md).
	Sessions int
	// Dir is the instance folder (at most 64 bytes: it holds Unix sockets).
	// Empty: a new folder in /dev/shm (tmpfs), or os.TempDir() without it,
	// removed by Stop. A given folder
	// is kept; starting on an existing one is faster.
	Dir string
}

// Stack is a running private Dovecot (and Postfix) instance on 127.0.0.1.
// Its methods are safe for concurrent use.
type Stack struct {
	Dir string // the instance folder

	IMAPAddr              string // IMAP (STARTTLS with Options.TLS)
	IMAPSAddr             string // IMAP over TLS; "" without Options.TLS
	LMTPAddr              string // Dovecot LMTP: delivery to any address
	DovecotSubmissionAddr string // Dovecot submission, relays to SMTPAddr
	SMTPAddr              string // Postfix, no auth, trusted: mail "from the internet"; "" without Options.Postfix
	SubmissionAddr        string // Postfix submission, SASL via Dovecot; "" without Options.Postfix
	SubmissionsAddr       string // Postfix submission over TLS; "" without Options.Postfix and Options.TLS

	IntrospectionURL string       // what Dovecot's oauth2 passdb calls
	IdP              *fakeidp.IdP // the identity provider served by the stack; nil with Options.IntrospectionURL
	IdPURL           string       // IdP's base URL ("http://127.0.0.1:port"); "" with Options.IntrospectionURL

	opts       Options
	cfg        config
	cert       *x509.Certificate
	masterUser string
	masterPass string
	removeDir  bool
	timings    string // how long each daemon took to start

	idpStop func() error

	procMu  sync.Mutex // serialises starting and stopping the daemons
	stopped bool

	usersMu sync.Mutex
	users   map[string]string // password users, lowercase address -> password
}

// CheckInstalled reports (as ErrNotInstalled) why a stack with opts cannot
// run on this machine, or nil.
func CheckInstalled(opts Options) error {
	bins := []string{dovecotBin, doveadmBin}
	if opts.Postfix {
		bins = append(bins, postfixBin)
	}
	for _, b := range bins {
		if _, err := os.Stat(b); err != nil {
			return fmt.Errorf("%w: %s missing: as root, run %s", ErrNotInstalled, b, InstallCommand)
		}
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("%w: Dovecot and Postfix masters must start as root", ErrNotInstalled)
	}
	return nil
}

// Start starts a stack for a test and stops it in t.Cleanup, printing the
// daemons' logs first if the test failed. It skips the test when the stack
// cannot run here (see CheckInstalled), or fails it when the CI environment
// variable is set.
func Start(t testing.TB, opts Options) *Stack {
	t.Helper()
	if err := CheckInstalled(opts); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	began := time.Now()
	s, err := StartStack(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("mailtest: started in %v (%s): imap %s lmtp %s smtp %q submission %q",
		time.Since(began).Round(time.Millisecond), s.timings, s.IMAPAddr, s.LMTPAddr, s.SMTPAddr, s.SubmissionAddr)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("mailtest: logs of %s:\n%s", s.Dir, s.logTails(200))
		}
		began := time.Now()
		if err := s.Stop(); err != nil {
			t.Error(err)
		}
		t.Logf("mailtest: stopped in %v", time.Since(began).Round(time.Millisecond))
	})
	return s
}

// StartStack starts a stack: it writes the instance folder, serves the
// identity provider, starts Dovecot (and Postfix) on free loopback ports and
// returns once every listener greets. The caller must call Stop.
func StartStack(ctx context.Context, opts Options) (*Stack, error) {
	if err := CheckInstalled(opts); err != nil {
		return nil, err
	}
	var err error
	var retries []string
	for range 3 { // a picked port may be taken before the daemon binds it
		var s *Stack
		if s, err = startOnce(ctx, opts); err == nil {
			if len(retries) > 0 {
				s.timings += fmt.Sprintf("; after %d retries: %s", len(retries), strings.Join(retries, "; "))
			}
			return s, nil
		}
		if !errors.Is(err, errPortInUse) {
			break
		}
		retries = append(retries, err.Error())
	}
	return nil, err
}

func startOnce(ctx context.Context, opts Options) (s *Stack, err error) {
	s = &Stack{opts: opts, users: map[string]string{}}
	defer func() {
		if err != nil {
			err = errors.Join(err, s.Stop())
		}
	}()
	if err := s.makeDir(); err != nil {
		return s, err
	}
	ports, err := freePorts(7)
	if err != nil {
		return s, err
	}
	s.cfg = config{
		Root: s.Dir, Instance: "mailtest-" + strconv.Itoa(ports[0]), TLS: opts.TLS, SendAsCheck: opts.SendAsCheck,
		IMAPPort: ports[0], LMTPPort: ports[1], DovecotSubmissionPort: ports[2], SMTPPort: ports[3], SubmissionPort: ports[4],
		IMAPProcessLimit: 200,
	}
	if opts.Sessions > 200 {
		const perProcess = 100
		s.cfg.IMAPClientLimit = perProcess
		s.cfg.IMAPProcessLimit = opts.Sessions/perProcess + 20
		s.cfg.ClientLimit = opts.Sessions + 1000
	}
	addr := func(p int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(p)) }
	s.IMAPAddr, s.LMTPAddr, s.DovecotSubmissionAddr = addr(ports[0]), addr(ports[1]), addr(ports[2])
	if opts.TLS {
		s.cfg.IMAPSPort, s.IMAPSAddr = ports[5], addr(ports[5])
		if s.cert, err = writeCert(s.Dir); err != nil {
			return s, err
		}
	}
	if opts.Postfix {
		s.SMTPAddr, s.SubmissionAddr = addr(ports[3]), addr(ports[4])
		if opts.TLS {
			s.cfg.SubmissionsPort, s.SubmissionsAddr = ports[6], addr(ports[6])
		}
	}
	if err := s.serveIdP(); err != nil {
		return s, err
	}
	s.cfg.IntrospectionURL = s.IntrospectionURL
	if err := s.writeUsers(); err != nil {
		return s, err
	}
	if err := writeConfig(s.cfg); err != nil {
		return s, err
	}
	began := time.Now()
	if err := s.startDovecot(ctx); err != nil {
		return s, err
	}
	s.timings = fmt.Sprintf("dovecot %v", time.Since(began).Round(time.Millisecond))
	if opts.Postfix {
		began = time.Now()
		if err := s.startPostfix(ctx); err != nil {
			return s, err
		}
		s.timings += fmt.Sprintf(", postfix %v", time.Since(began).Round(time.Millisecond))
	}
	return s, nil
}

// makeDir creates the instance folder and its layout. Every parent must be
// world-executable (Dovecot's auth and Postfix run unprivileged); parents
// that are temporary folders (t.TempDir is 0700) are made so.
func (s *Stack) makeDir() error {
	dir := s.opts.Dir
	if dir == "" {
		// tmpfs when there is one: MULTIAPPEND and LMTP create a file per
		// message, ten times slower on a busy disk (see the package doc).
		d, err := os.MkdirTemp("/dev/shm", "mailtest-")
		if err != nil {
			d, err = os.MkdirTemp("", "mailtest-")
		}
		if err != nil {
			return fmt.Errorf("create instance folder: %w", err)
		}
		dir, s.removeDir = d, true
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("instance folder: %w", err)
	}
	s.Dir = dir
	if len(dir) > 64 {
		return fmt.Errorf("instance folder %s: longer than 64 bytes (Unix socket paths): use a shorter Options.Dir", dir)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create instance folder: %w", err)
	}
	if err := worldExecutable(dir); err != nil {
		return err
	}
	for _, sub := range []string{"etc/dovecot", "etc/postfix", "etc/tls", "run", "state/dovecot", "log", "mail", "postfix/spool", "postfix/data"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			return fmt.Errorf("create instance folder: %w", err)
		}
	}
	// Dovecot creates homes as the mail user (uid 8).
	if err := os.Chown(filepath.Join(dir, "mail"), 8, 8); err != nil {
		return fmt.Errorf("instance folder: %w", err)
	}
	if s.opts.Postfix {
		if err := makePostfixDirs(dir); err != nil {
			return fmt.Errorf("instance folder: postfix queue: %w", err)
		}
	}
	return nil
}

// worldExecutable makes dir 0755 and checks that every parent is
// world-executable, fixing those inside os.TempDir().
func worldExecutable(dir string) error {
	if err := os.Chmod(dir, 0o755); err != nil {
		return fmt.Errorf("instance folder: %w", err)
	}
	tmp, _ := filepath.Abs(os.TempDir())
	for p := filepath.Dir(dir); ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("instance folder: %w", err)
		}
		if fi.Mode().Perm()&0o001 == 0 {
			if !strings.HasPrefix(p, tmp+string(filepath.Separator)) {
				return fmt.Errorf("instance folder: parent %s is not world-executable (%v): Dovecot and Postfix cannot reach it", p, fi.Mode().Perm())
			}
			if err := os.Chmod(p, fi.Mode().Perm()|0o755); err != nil {
				return fmt.Errorf("instance folder: %w", err)
			}
		}
		if p == filepath.Dir(p) {
			return nil
		}
	}
}

// serveIdP serves Options.IdP (or a new fakeidp) on a free loopback port,
// unless Options.IntrospectionURL names another endpoint.
func (s *Stack) serveIdP() error {
	if s.opts.IntrospectionURL != "" {
		s.IntrospectionURL = s.opts.IntrospectionURL
		return nil
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("identity provider: %w", err)
	}
	s.IdPURL = "http://" + ln.Addr().String()
	s.IntrospectionURL = s.IdPURL + "/introspect"
	s.IdP = s.opts.IdP
	if s.IdP == nil {
		s.IdP = fakeidp.New(fakeidp.Options{BaseURL: s.IdPURL})
	}
	s.IdP.AddApp(fakeidp.App{ClientID: ClientID, Name: "mailtest"})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.IdP.Serve(ctx, ln) }()
	s.idpStop = func() error {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, context.Canceled) {
			return fmt.Errorf("identity provider: %w", err)
		}
		return nil
	}
	return nil
}

// Stop stops Postfix, Dovecot and the identity provider, and removes the
// instance folder if StartStack created it. Calling it again does nothing.
func (s *Stack) Stop() error {
	s.procMu.Lock()
	defer s.procMu.Unlock()
	if s.stopped {
		return nil
	}
	s.stopped = true
	var errs []error
	if s.Dir != "" {
		errs = append(errs, s.stopPostfix(), s.stopDovecot())
	}
	if s.idpStop != nil {
		errs = append(errs, s.idpStop())
	}
	if err := errors.Join(errs...); err != nil {
		return err // keep the folder: something may still run there
	}
	if s.removeDir {
		if err := os.RemoveAll(s.Dir); err != nil {
			return fmt.Errorf("remove instance folder: %w", err)
		}
	}
	return nil
}

// StopDovecot stops Dovecot alone (Postfix then defers deliveries), for tests
// of a server that goes away.
func (s *Stack) StopDovecot() error {
	s.procMu.Lock()
	defer s.procMu.Unlock()
	return s.stopDovecot()
}

// StartDovecot starts Dovecot again after StopDovecot, on the same ports.
func (s *Stack) StartDovecot(ctx context.Context) error {
	s.procMu.Lock()
	defer s.procMu.Unlock()
	if s.stopped {
		return errors.New("mailtest: stack stopped")
	}
	wctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	if err := waitPortsFree(wctx, s.cfg.IMAPPort, s.cfg.IMAPSPort, s.cfg.LMTPPort, s.cfg.DovecotSubmissionPort); err != nil {
		return fmt.Errorf("mailtest: start dovecot: %w", err)
	}
	return s.startDovecot(ctx)
}

// Restart stops and starts Dovecot (not Postfix): every IMAP connection is
// dropped, as in a server restart. Stop/start rather than "doveadm reload",
// which stalls logins for about 5 s.
func (s *Stack) Restart(ctx context.Context) error {
	if err := s.StopDovecot(); err != nil {
		return err
	}
	return s.StartDovecot(ctx)
}

// Kick ends user's IMAP sessions ("doveadm kick"), as a server that drops
// a client does: the client must connect and authenticate again.
func (s *Stack) Kick(ctx context.Context, user string) error {
	out, err := exec.CommandContext(ctx, doveadmBin, "-c", s.dovecotConf(), "kick", user).CombinedOutput()
	if err != nil {
		return fmt.Errorf("mailtest: doveadm kick %s: %w: %s", user, err, out)
	}
	return nil
}

// randomHex returns n random bytes as hex.
func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return fmt.Sprintf("%x", b)
}
