// Package mailtest starts a real, private mail stack for tests: Dovecot 2.3
// (IMAP, LMTP, submission) and optionally Postfix 3.7, on 127.0.0.1 only,
// authenticating XOAUTH2 and OAUTHBEARER by RFC 7662 token introspection
// against internal/fakeidp, and PLAIN/LOGIN for password users. It follows
// shared/MAILSTACK.md; what differs from it is listed under "Beyond the recipe".
//
//	s := mailtest.Start(t, mailtest.Options{Postfix: true})
//	tok, _ := s.Token("support@example.com")          // from s.IdP
//	s.Deliver(ctx, "support@example.com", raw)          // LMTP: there on return
//	c, _ := imapclient.DialInsecure(s.IMAPAddr, nil)
//	c.Authenticate(sasl.NewXOAuth2Client("support@example.com", tok))
//
// Start skips the test when Dovecot (or Postfix) is not installed or the
// test does not run as root, and fails it instead when CI is set. A TestMain
// shares one stack with StartStack and Stop.
//
// # Design
//
// Every stack is an instance folder (etc, run, state, log, mail, postfix)
// with configuration rendered from Go templates, its own free loopback ports
// for every listener, and its own identity provider, so any number of stacks
// and test packages run at once. The folder is in /dev/shm when it exists:
// Maildir writes a file per message, and on a busy disk MULTIAPPEND drops from
// about 40,000 to 4,000 messages/s. Any address at any domain exists: mail to
// it lands in mail/<domain>/<local>/Maildir, so mail "sent to customers" can
// be read back.
//
// Invariants:
//   - dovecot always runs with -c (a bare dovecot starts the system
//     instance); postfix always with -c.
//   - Only this stack's processes are ever signalled: the masters' pids come
//     from the instance's pid files and are checked against /proc (Dovecot's
//     command line names our dovecot.conf, Postfix's environment our
//     MAIL_CONFIG); Stop also kills the children a master leaves behind,
//     checked the same way (Dovecot's imap processes outlive a SIGTERMed
//     master while their client stays connected).
//   - A process is gone when /proc/PID/stat says so, not kill -0: a master
//     re-parented to an init that does not reap stays a zombie.
//   - Tests put mail in by protocol (LMTP, SMTP, IMAP APPEND), never by
//     writing Maildir files.
//
// The helpers read and load any mailbox without the user's token: Dovecot
// has a master passdb (etc/master-users, a new password per start) used only
// by logins that carry a SASL authorization identity (PLAIN authzid=<user>,
// authcid=<master>, RFC 4616 2). Append speaks raw IMAP because go-imap v2
// has no MULTIAPPEND (RFC 3502), which with LITERAL+ loads 1,000 messages per
// command.
//
// # Beyond the recipe
//
//   - The master passdb above.
//   - Postfix's generated files get an mtime a minute back: Postfix will not
//     load a main.cf or table changed within the current second and retries
//     every 300 ms, which made each first start take 2 s.
//   - The Postfix queue folders are created in Go from Postfix's own list
//     (/etc/postfix/postfix-files) and "postfix start" runs with its
//     quick-start marker, skipping integrity checks that spawn some 40
//     processes (seconds on a loaded machine). With both, a stack with
//     Postfix starts in 0.1-0.4 s instead of the recipe's 2.1-2.6 s.
//   - Postfix binds with SO_REUSEPORT: on a port another stack's Postfix took
//     between our pick and our bind, both would run and share connections.
//     Starting Postfix therefore counts the listeners of its ports in
//     /proc/net/tcp; a clash, like Dovecot's "Address already in use", makes
//     StartStack retry on other ports.
//   - Dovecot re-reads its passwd-file at most once a second:
//     AddPasswordUser waits for the next second (Options.PasswordUsers does
//     not).
//
// # Limits
//
// A test binary that dies without running its cleanups (a -timeout panic,
// SIGKILL) leaves its daemons running, on ports nobody else will pick again
// soon; they hold a few MB each and can be found by their folder
// (/dev/shm/mailtest-*). Every failed authentication takes Dovecot about 0.5 s.
// Stopping Dovecot takes about 1 s (its master waits for its log process).
package mailtest
