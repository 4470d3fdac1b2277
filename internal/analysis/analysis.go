// Package analysis names what the worker asks a semantic analysis of: a
// Query, one text with the language and context it is read in. Everything
// that analyses, caches or keys analyses takes a Query, so the three strings
// travel together and the defaults are applied in one place.
package analysis

import "github.com/hybridscore/hybridscore/pkg/job"

// Query is one text to analyse, in a language and a context. The zero
// Language and Context mean job.DefaultLanguage and job.DefaultContext once
// WithDefaults has been applied.
type Query struct {
	Text     string `json:"text"`
	Language string `json:"language,omitempty"`
	Context  string `json:"context,omitempty"`
}

// Of returns the query for text with the defaults of a job: the language
// and context every job carries unless it says otherwise.
func Of(text string) Query {
	return Query{Text: text, Language: job.DefaultLanguage, Context: job.DefaultContext}
}

// WithDefaults returns q with an empty Language or Context replaced by the
// job defaults.
func (q Query) WithDefaults() Query {
	if q.Language == "" {
		q.Language = job.DefaultLanguage
	}
	if q.Context == "" {
		q.Context = job.DefaultContext
	}
	return q
}

// Texts returns the queries of texts, all read in the language and context
// of like.
func Texts(texts []string, like Query) []Query {
	like = like.WithDefaults()
	qs := make([]Query, len(texts))
	for i, t := range texts {
		qs[i] = Query{Text: t, Language: like.Language, Context: like.Context}
	}
	return qs
}
