package analyzer

import "strings"

func set(words string) map[string]bool {
	m := map[string]bool{}
	for _, w := range strings.Fields(words) {
		m[w] = true
	}
	return m
}

var stopWords = set(`a about above after again against all also am an and any are as at be because been
before being below between both but by can could did do does doing down during each few for from further
had has have having he her here hers herself him himself his how i if in into is it its itself just me
more most my myself no nor not now of off on once only or other our ours ourselves out over own same she
should so some such than that the their theirs them themselves then there these they this those through
to too under until up very was we were what when where which while who whom why will with would you your
yours yourself yourselves via per etc new make made get got let lets may might must shall within without
upon across along around like one two three many much every via using use used`)

// imperatives open an instruction.
var imperatives = set(`implement build create add fix write design develop refactor update remove delete
migrate deploy configure set setup install test optimize improve make generate convert parse validate
integrate support enable disable handle define document review bake cook prepare`)

// verbs link two concepts; each maps to its relationship type.
var verbs = func() map[string]string {
	m := map[string]string{}
	for typ, words := range map[string]string{
		"uses":            "uses using utilizes utilize utilizing leverages leverage leveraging employs",
		"implements":      "implements implement implementing implemented realizes",
		"extends":         "extends extend extending extended inherits inherit subclasses wraps wrap",
		"contains":        "contains contain containing includes include including comprises",
		"produces":        "produces produce producing generates generating emits emit returns outputs",
		"calls":           "calls call calling invokes invoke invoking queries query",
		"stores":          "stores store storing persists persist saves save caches",
		"validates":       "validate validates validating verifies verify verifying checks authenticates authorizes",
		"integrates_with": "integrates connects connect connecting communicates",
		"depends_on":      "requires require requiring needs",
	} {
		for _, w := range strings.Fields(words) {
			m[w] = typ
		}
	}
	return m
}()

// dependVerbs become depends_on when followed by "on".
var dependVerbs = set(`depends depend depending relies rely relying`)

var interrogatives = set(`what why how when where which who whom whose does do is are can could should would will`)

// lexicon maps a normalised term to the domains it indicates.
var lexicon = func() map[string][]string {
	m := map[string][]string{}
	for domain, words := range map[string]string{
		"technology": `api apis software code server client database http https rest grpc oauth oauth2 jwt token
			authentication authorization login microservice microservices kubernetes docker container cloud
			cache redis nats queue stream python golang java javascript typescript rust sql nosql endpoint
			deployment pipeline ci backend frontend framework library function algorithm network protocol
			latency throughput compiler bug debug git repository web browser mobile app application
			user interface ui json yaml xml service system computer programming developer encryption`,
		"security": `authentication authorization oauth oauth2 jwt token password encryption tls ssl certificate
			vulnerability attack firewall permission credential secret signing signature security`,
		"data": `data dataset analytics etl warehouse schema query index pipeline metric metrics dashboard
			report statistic statistics vector embedding model training`,
		"business": `revenue customer sale sales market marketing profit budget finance invoice payment
			contract stakeholder strategy roadmap product pricing cost billing order retail management`,
		"science": `experiment hypothesis physics chemistry biology molecule atom energy quantum cell
			gene protein laboratory measurement observation theory`,
		"academic": `research paper thesis study citation journal university professor student lecture
			course curriculum literature review publication peer`,
		"medical": `patient diagnosis treatment clinical hospital doctor nurse disease symptom therapy
			medication drug surgery health healthcare medicine vaccine`,
		"legal": `law legal contract court regulation compliance liability statute attorney lawyer
			litigation gdpr license licence agreement policy privacy`,
		"culinary": `bake baking bread sourdough rye starter flour dough oven recipe cook cooking kitchen
			ingredient yeast butter sugar salt`,
	} {
		for _, w := range strings.Fields(words) {
			m[w] = append(m[w], domain)
		}
	}
	return m
}()
