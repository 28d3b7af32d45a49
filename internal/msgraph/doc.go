// Package msgraph is a small Microsoft Graph client for one mailbox: send a
// MIME message (POST /users/{u}/sendMail), find a folder, follow a folder's
// message delta, stream a message's MIME ($value) and find a message by its
// Message-ID. It is plain net/http
// with a few typed structs and imports nothing of the application (the Graph
// SDK is tens of MB and cannot send MIME).
//
// Invariants:
//   - At most MaxInFlight (default 4, Outlook's per-mailbox concurrency limit)
//     requests of one Client are in flight at once, a streamed $value body
//     counting until it is closed. One Client per mailbox, shared by fetching
//     and sending, keeps the mailbox under the limit.
//   - 429 and 503 (and a GET's network error) are retried inside the client
//     with jittered exponential back-off that honours Retry-After, within a
//     bound (MaxAttempts, MaxWait); beyond it the call returns KindThrottled
//     or KindUnavailable with the server's Retry-After so the caller can
//     schedule. A POST is never retried after an ambiguous failure (a network
//     error once the request may have been sent, a 500 or 504): Graph would
//     send the message twice.
//   - A 401 refreshes the token once (Token(ctx, true)) and retries; a second
//     401 is KindAuth. Errors of Token itself are returned wrapped (not as
//     *Error) so the caller's own classification of sign-in failures applies.
//   - Every failure Graph answered is an *Error with a Kind; callers switch on
//     the Kind, never on prose. The one piece of prose read here is Graph's
//     "Access to OData is disabled" (an application access policy), which
//     Graph reports only in error.message; it becomes Error.AccessPolicy.
//   - Delta links are opaque and used verbatim (Graph encodes the query, the
//     folder and the sync state in them); only their origin is checked, so
//     the bearer token is never sent to another host.
//
// Graph references: delta query for messages
// (learn.microsoft.com/graph/delta-query-messages), sendMail with MIME
// (learn.microsoft.com/graph/api/user-sendmail), throttling and the Outlook
// service limits (learn.microsoft.com/graph/throttling-limits), the error
// shape (learn.microsoft.com/graph/errors).
package msgraph
