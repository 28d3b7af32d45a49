// Package imapsync keeps one mailbox synced over IMAP: it dials (TLS,
// STARTTLS, or clear text to loopback), authenticates with a token function
// (XOAUTH2, OAUTHBEARER) or a password (PLAIN, LOGIN), checks each folder's
// UIDVALIDITY, hands every message above the folder's checkpoint to a Store
// in UID order, and then waits for new mail with IDLE, or polls. It knows
// no database: the Store (the database layer) keeps the checkpoints and
// commits each message with its checkpoint move.
//
// A folder is synced in two phases. "UID FETCH last+1:* (UID INTERNALDATE
// RFC822.SIZE)" lists what is new (about 24 bytes a message are held);
// then the bodies are fetched in UID order, at most 200 messages or 32 MiB
// per command, with BODY.PEEK[] (or BODY.PEEK[HEADER] for a message over
// MaxMessageBytes, handed over as Truncated), and each literal is streamed
// from the connection into Store.Handle: no message is buffered here. The
// first phase lets too-old and too-large messages be passed over without
// downloading them.
//
// Invariants:
//
//   - The checkpoint only moves forward, to a message Handle committed, or
//     with Advance past messages that were skipped and reported (Skipped,
//     older than MaxAge) or deliberately passed over (the first connect).
//     If Handle fails, the sync stops and the next one starts at the
//     checkpoint: no message is lost, and none that was committed is handed
//     over again (at-least-once around a crash in Handle itself, which the
//     store's Message-ID dedupe turns into exactly once).
//   - A changed UIDVALIDITY (RFC 9051 2.3.1.1) resets the checkpoint to 0
//     and rescans the folder; the store's dedupe prevents duplicates.
//   - After-processing (\Seen, move) touches only committed messages;
//     with ActionLeave folders are opened with EXAMINE and nothing changes
//     on the server.
//   - A server's refusal of the credentials gets one retry with a refreshed
//     token, then Run stops with an *AuthError (needs re-authentication);
//     every other failure is retried with back-off until the context ends.
//
// OpenSent opens a separate session on the Sent folder (the \Sent folder of
// RFC 6154, else a usual name, else a new "Sent"), authenticated exactly as
// sync is, for keeping copies of the mail Postdesk submits over SMTP and for
// settling an unknown submission outcome: HasMessageID searches by
// Message-ID and confirms each hit against the field itself.
//
// Logs carry a per-connection "conn" id besides the caller's attributes,
// and never a token, password or message content.
package imapsync
