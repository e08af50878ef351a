// Package bandit is the `bandit` task: in each loop of an A/B/n experiment
// it moves the traffic weights of the app's release (charts/release)
// toward the evidence, by a helm upgrade, and promotes the best version
// when the evidence is strong enough.
//
// It reads what the tasks before it in the loop left in the result: the
// probability that each version is best by the reward (an assess reward
// over a metric with samples, such as abn/purchase-per-user) and the
// sequential comparisons of each candidate with the baseline on the same
// metric. Each loop it:
//
//  1. reads the release's newest revision: its versions, weights and
//     readiness; a release that is pending or not deployed, whose
//     strategy is not canary (or none), or whose versions are not the
//     spec's stops the experiment with an error and nothing changed;
//  2. promotes (weight 100, the others 0) the ready version most likely
//     best once P(best) reaches promoteAt and the sequential comparisons
//     back it (a candidate judged better than the baseline, or the
//     baseline once every candidate is judged worse), and ends the
//     experiment (experiment.ErrDone);
//  3. else moves the weights toward top-two Thompson sampling's shares
//     (pkg/bandit), within the floors and the cap per step, once every
//     version has minSample in the reward's sample; an unready version
//     gains nothing, and nothing moves while one holds weight (the
//     readiness gate would refuse the upgrade);
//  4. in the last loop without a promotion, leaves the weights where the
//     evidence put them (atBudget: keep) or gives the baseline all
//     traffic (atBudget: baseline).
//
// Every change is a helm upgrade of the release's own chart that reuses
// its values and sets weights by version name, so `helm history` tells
// the story and the release chart's gates still apply. A failed upgrade
// changes nothing (Helm's own rollback of a failed gate aside) and fails
// the loop, unless onUpgradeFailure is continue.
package bandit
