package similarity_test

import (
	"fmt"

	"github.com/hybridscore/hybridscore/internal/similarity"
)

func ExampleCompare() {
	var a, b similarity.Builder
	for _, c := range []string{"OAuth2", "token", "jwt"} {
		a.Add(similarity.Concept, c)
	}
	for _, c := range []string{"oauth2", "user", "TOKEN"} {
		b.Add(similarity.Concept, c)
	}
	a.Add(similarity.Domain, "technology")
	b.Add(similarity.Domain, "technology")
	components, total := similarity.Compare(a.Build(), b.Build(), &similarity.DefaultWeights)
	fmt.Printf("concept %.2f domain %.2f theme %.2f total %.2f\n",
		components[similarity.Concept], components[similarity.Domain], components[similarity.Theme], total)
	// Output: concept 0.50 domain 1.00 theme 1.00 total 0.85
}
