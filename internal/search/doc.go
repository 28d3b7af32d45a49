// Package search is the ticket search language and the text folding both
// databases index with. It is a leaf: it knows no database and no ticket.
//
// Parse reads what an agent types in the list's search box or sends as
// GET /api/v1/tickets?q= into a typed Query (terms and filters); the store
// compiles a Query into SQLite FTS5 MATCH text or a PostgreSQL tsquery,
// always passed as one bind parameter, never spliced into SQL.
//
// Invariants:
//   - Indexed text and searched text go through the same Tokens function
//     (NFKD, combining marks dropped, lower case, split at anything that is
//     not a letter or digit), and the index holds only those tokens
//     separated by spaces (IndexText). The databases' own tokenizers (FTS5
//     "ascii", PostgreSQL "simple") then split at the spaces only, so both
//     databases find the same tickets for the same query.
//   - A Term's tokens contain only letters and digits: nothing a user types
//     can become an FTS5 or tsquery operator.
//   - A query Parse accepts is bounded (MaxQueryBytes, MaxTerms); a query
//     it refuses is an *Error whose message tells the user what to change.
package search
