package analyzer

import (
	"strings"
	"testing"
)

// TestLexiconTermsClaimedOnce fails for a term that two concepts claim:
// only the first would ever match, so the second mention is a mistake that
// hides which kind of work the word was meant to signal.
func TestLexiconTermsClaimedOnce(t *testing.T) {
	owner := map[string]string{}
	for _, a := range areas {
		cur := ""
		for line := range strings.Lines(a.concepts) {
			line = strings.TrimSpace(line)
			if name, rest, ok := strings.Cut(line, ":"); ok && !strings.Contains(name, ",") {
				cur, line = strings.TrimSpace(name), rest
			}
			for _, term := range strings.Split(line, ",") {
				term = strings.TrimSpace(term)
				if term == "" {
					continue
				}
				key := term
				if !strings.HasPrefix(term, "=") {
					var stems []string
					for _, w := range splitWords(term) {
						stems = append(stems, stemWord(w))
					}
					key = strings.Join(stems, " ")
				}
				if prev, dup := owner[key]; dup && prev != cur {
					t.Errorf("%q (%s) is claimed by %s and %s", term, key, prev, cur)
				}
				owner[key] = cur
			}
		}
	}
}
