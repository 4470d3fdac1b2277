// Package langextract is the client of the langextract semantic-analysis
// service (docs/scoring.md#semantic-analysis): the wire types, a strict
// decoder for its answers, and an HTTP client with timeouts, retries and a
// failure taxonomy of sentinel errors, one per fallback_reason.
package langextract

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"

	"github.com/hybridscore/hybridscore/internal/similarity"
)

// Analysis is the body of a 200 answer to POST /analyze/semantic.
type Analysis struct {
	SemanticPatterns    []SemanticPattern  `json:"semantic_patterns"`
	Concepts            []string           `json:"concepts"`
	Themes              []string           `json:"themes"`
	DomainIndicators    []string           `json:"domain_indicators"`
	PrimaryTopics       []string           `json:"primary_topics"`
	SemanticDensity     float64            `json:"semantic_density"`
	ConceptualCoherence float64            `json:"conceptual_coherence"`
	ThematicConsistency float64            `json:"thematic_consistency"`
	SemanticContext     SemanticContext    `json:"semantic_context"`
	TopicWeights        map[string]float64 `json:"topic_weights"`
}

// SemanticPattern is one entry of semantic_patterns.
type SemanticPattern struct {
	PatternID         string         `json:"pattern_id"`
	PatternType       string         `json:"pattern_type"`
	PatternName       string         `json:"pattern_name,omitempty"`
	Description       string         `json:"description,omitempty"`
	Examples          []string       `json:"examples,omitempty"`
	Frequency         int            `json:"frequency,omitempty"`
	ConfidenceScore   float64        `json:"confidence_score"`
	SignificanceScore float64        `json:"significance_score,omitempty"`
	Context           string         `json:"context,omitempty"`
	Properties        map[string]any `json:"properties,omitempty"`
	RelatedEntityIDs  []string       `json:"related_entity_ids,omitempty"`
}

// SemanticContext carries the relationships the analysis found.
type SemanticContext struct {
	Relationships      []Relationship      `json:"relationships,omitempty"`
	RelationshipChains []RelationshipChain `json:"relationship_chains,omitempty"`
}

// Relationship links two entities; either Type or RelationshipType names it.
type Relationship struct {
	Type             string `json:"type,omitempty"`
	RelationshipType string `json:"relationship_type,omitempty"`
	Source           string `json:"source,omitempty"`
	Target           string `json:"target,omitempty"`
}

// RelationshipChain is a sequence of relationship types.
type RelationshipChain struct {
	Types []string `json:"types"`
}

// Features reduces a to the sets pattern similarity compares.
func (a *Analysis) Features() *similarity.Features {
	var b similarity.Builder
	for _, s := range a.Concepts {
		b.Add(similarity.Concept, s)
	}
	for _, s := range a.Themes {
		b.Add(similarity.Theme, s)
	}
	for _, s := range a.DomainIndicators {
		b.Add(similarity.Domain, s)
	}
	for _, p := range a.SemanticPatterns {
		b.Add(similarity.Structure, p.PatternType)
	}
	for _, r := range a.SemanticContext.Relationships {
		if r.Type != "" {
			b.Add(similarity.Relationship, r.Type)
		} else if r.RelationshipType != "" {
			b.Add(similarity.Relationship, r.RelationshipType)
		}
	}
	for _, c := range a.SemanticContext.RelationshipChains {
		for _, t := range c.Types {
			b.Add(similarity.Relationship, t)
		}
	}
	return b.Build()
}

// The decoder reads into pointer-typed mirrors so that an absent or null
// field is told apart from a zero value.
type wireAnalysis struct {
	SemanticPatterns    *[]wirePattern      `json:"semantic_patterns"`
	Concepts            *[]string           `json:"concepts"`
	Themes              *[]string           `json:"themes"`
	DomainIndicators    *[]string           `json:"domain_indicators"`
	PrimaryTopics       *[]string           `json:"primary_topics"`
	SemanticDensity     *float64            `json:"semantic_density"`
	ConceptualCoherence *float64            `json:"conceptual_coherence"`
	ThematicConsistency *float64            `json:"thematic_consistency"`
	SemanticContext     *wireContext        `json:"semantic_context"`
	TopicWeights        *map[string]float64 `json:"topic_weights"`
}

type wirePattern struct {
	PatternID       *string  `json:"pattern_id"`
	PatternType     *string  `json:"pattern_type"`
	Type            *string  `json:"type"` // what some langextract versions send instead
	ConfidenceScore *float64 `json:"confidence_score"`
}

type wireContext struct {
	Relationships      []wireRelationship `json:"relationships"`
	RelationshipChains []struct {
		Types []string `json:"types"`
	} `json:"relationship_chains"`
}

type wireRelationship struct {
	Type             *string `json:"type"`
	RelationshipType *string `json:"relationship_type"`
}

// Decode parses and strictly validates an analysis. Any deviation from the
// shape of docs/scoring.md#the-langextract-call (not an object, a missing or null field, a wrong type, a
// number outside [0, 1]) returns an error wrapping ErrValidation.
func Decode(body []byte) (*Analysis, error) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 || body[0] != '{' {
		return nil, fmt.Errorf("%w: body is not a JSON object", ErrValidation)
	}
	var w wireAnalysis
	if err := json.Unmarshal(body, &w); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrValidation, err)
	}
	missing := func(name string) error { return fmt.Errorf("%w: field %q missing or null", ErrValidation, name) }
	switch {
	case w.SemanticPatterns == nil:
		return nil, missing("semantic_patterns")
	case w.Concepts == nil:
		return nil, missing("concepts")
	case w.Themes == nil:
		return nil, missing("themes")
	case w.DomainIndicators == nil:
		return nil, missing("domain_indicators")
	case w.PrimaryTopics == nil:
		return nil, missing("primary_topics")
	case w.SemanticContext == nil:
		return nil, missing("semantic_context")
	case w.TopicWeights == nil:
		return nil, missing("topic_weights")
	}
	a := &Analysis{
		Concepts:         *w.Concepts,
		Themes:           *w.Themes,
		DomainIndicators: *w.DomainIndicators,
		PrimaryTopics:    *w.PrimaryTopics,
		TopicWeights:     *w.TopicWeights,
	}
	for _, m := range []struct {
		name string
		v    *float64
		dst  *float64
	}{
		{"semantic_density", w.SemanticDensity, &a.SemanticDensity},
		{"conceptual_coherence", w.ConceptualCoherence, &a.ConceptualCoherence},
		{"thematic_consistency", w.ThematicConsistency, &a.ThematicConsistency},
	} {
		if m.v == nil {
			return nil, missing(m.name)
		}
		if !unit(*m.v) {
			return nil, fmt.Errorf("%w: %s=%v out of [0, 1]", ErrValidation, m.name, *m.v)
		}
		*m.dst = *m.v
	}
	for k, v := range a.TopicWeights {
		if !unit(v) {
			return nil, fmt.Errorf("%w: topic_weights[%q]=%v out of [0, 1]", ErrValidation, k, v)
		}
	}
	a.SemanticPatterns = make([]SemanticPattern, 0, len(*w.SemanticPatterns))
	for i, p := range *w.SemanticPatterns {
		// Read as langextract's other consumers read it: pattern_type, else
		// type; an entry with neither says nothing and is skipped. A field
		// that is present with a wrong type was refused above.
		if p.PatternType == nil {
			p.PatternType = p.Type
		}
		if p.PatternType == nil {
			continue
		}
		switch {
		case p.PatternID == nil:
			return nil, fmt.Errorf("%w: semantic_patterns[%d].pattern_id missing", ErrValidation, i)
		case p.ConfidenceScore == nil:
			return nil, fmt.Errorf("%w: semantic_patterns[%d].confidence_score missing", ErrValidation, i)
		case !unit(*p.ConfidenceScore):
			return nil, fmt.Errorf("%w: semantic_patterns[%d].confidence_score=%v out of [0, 1]", ErrValidation, i, *p.ConfidenceScore)
		}
		a.SemanticPatterns = append(a.SemanticPatterns, SemanticPattern{PatternID: *p.PatternID, PatternType: *p.PatternType, ConfidenceScore: *p.ConfidenceScore})
	}
	for _, r := range w.SemanticContext.Relationships {
		rel := Relationship{}
		if r.Type != nil {
			rel.Type = *r.Type
		}
		if r.RelationshipType != nil {
			rel.RelationshipType = *r.RelationshipType
		}
		a.SemanticContext.Relationships = append(a.SemanticContext.Relationships, rel)
	}
	for _, c := range w.SemanticContext.RelationshipChains {
		a.SemanticContext.RelationshipChains = append(a.SemanticContext.RelationshipChains, RelationshipChain{Types: c.Types})
	}
	return a, nil
}

func unit(v float64) bool { return v >= 0 && v <= 1 && !math.IsNaN(v) }
