package ratls

import "github.com/asps-project/asps/internal/termtext"

// displayText makes text taken from a certificate (its subject, the names
// of TCG claims, error text that quotes them) safe to print on a terminal
// (termtext.Escape); displayList does it for each element.
func displayText(s string) string { return termtext.Escape(s) }

func displayList(l []string) []string { return termtext.EscapeAll(l) }
