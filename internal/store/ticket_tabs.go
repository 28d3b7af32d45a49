package store

import (
	"context"
	"fmt"
)

// TabCounts are the numbers on the ticket list's view and status tabs,
// counted by one query (a search is run once for all of them): the tickets
// a filter selects, ignoring its Status and Assignee, in each view, by
// status. Every status is present.
type TabCounts map[string]ViewCounts

// CountTicketTabs counts the tabs of the list that f selects, for user
// userID (whose tickets are "Mine").
func (c conn) CountTicketTabs(ctx context.Context, f TicketFilter, userID int64) (TabCounts, error) {
	f.Status, f.Assignee = "", 0
	q := c.ticketQuery(f, false)
	rows, err := c.query(ctx, `SELECT t.status, COUNT(*),
		COALESCE(SUM(CASE WHEN t.assignee_user_id = ? THEN 1 ELSE 0 END), 0),
		COALESCE(SUM(CASE WHEN t.assignee_user_id IS NULL THEN 1 ELSE 0 END), 0)`+q.from+q.where+` GROUP BY t.status`,
		append([]any{userID}, q.args...)...)
	if err != nil {
		return nil, fmt.Errorf("count the list's tabs: %w", err)
	}
	defer rows.Close()
	out := TabCounts{StatusOpen: {}, StatusPending: {}, StatusSolved: {}}
	for rows.Next() {
		var status string
		var v ViewCounts
		if err := rows.Scan(&status, &v.All, &v.Mine, &v.Unassigned); err != nil {
			return nil, fmt.Errorf("count the list's tabs: %w", err)
		}
		out[status] = v
	}
	return out, rows.Err()
}

// Views counts each view within a status ("": every status).
func (tc TabCounts) Views(status string) ViewCounts {
	if status != "" {
		return tc[status]
	}
	var sum ViewCounts
	for _, v := range tc {
		sum.All += v.All
		sum.Mine += v.Mine
		sum.Unassigned += v.Unassigned
	}
	return sum
}

// Statuses counts each status within a view, picked from its ViewCounts.
func (tc TabCounts) Statuses(view func(ViewCounts) int) map[string]int {
	out := make(map[string]int, len(tc))
	for s, v := range tc {
		out[s] = view(v)
	}
	return out
}
