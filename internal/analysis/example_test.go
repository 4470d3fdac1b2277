package analysis_test

import (
	"fmt"

	"github.com/hybridscore/hybridscore/internal/analysis"
)

func Example() {
	q := analysis.Query{Text: "Deploy to production environment"}.WithDefaults()
	fmt.Println(q.Language, q.Context)
	fr := analysis.Query{Text: "Déployer en production", Language: "fr"}.WithDefaults()
	fmt.Println(fr.Language, fr.Context)
	// Output:
	// en pattern_matching
	// fr pattern_matching
}
