"""Long controller errors condensed for list lines: the cause and its object first."""

from bot.domain.condense import collapse_literals, condense

# helm-controller's message for an upgrade that changes a Deployment's selector (the demo's
# kube-prometheus-stack failure), 473 characters.
IMMUTABLE_SELECTOR = (
    "Helm upgrade failed for release monitoring/kube-prometheus-stack with chart "
    'kube-prometheus-stack@66.3.0: cannot patch "kube-prometheus-stack-grafana" with kind '
    'Deployment: Deployment.apps "kube-prometheus-stack-grafana" is invalid: spec.selector: '
    'Invalid value: v1.LabelSelector{MatchLabels:map[string]string{"app.kubernetes.io/instance":'
    '"kube-prometheus-stack", "app.kubernetes.io/name":"grafana"}, '
    "MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable"
)


def test_a_helm_upgrade_failure_leads_with_the_object_and_the_cause() -> None:
    line = condense(IMMUTABLE_SELECTOR, 200)
    assert line.startswith(
        'Deployment.apps "kube-prometheus-stack-grafana": spec.selector: field is immutable'
    )
    assert "Helm upgrade failed for release monitoring/kube-prometheus-stack" in line
    assert len(line) <= 200


def test_the_context_is_clipped_before_the_cause_is() -> None:
    line = condense(IMMUTABLE_SELECTOR, 100)
    assert line.startswith('Deployment.apps "kube-prometheus-stack-grafana": spec.selector: field')
    assert len(line) <= 100


def test_a_message_that_fits_is_kept_as_the_controller_wrote_it() -> None:
    message = (
        "failed to checkout and determine revision: unable to list remote for "
        "'ssh://git@github.com/acme/platform': authentication required"
    )
    assert condense(message) == message
    assert condense("line one\n   line two") == "line one line two"


def test_go_struct_literals_collapse_to_their_type() -> None:
    assert "v1.LabelSelector{…}: field is immutable" in collapse_literals(IMMUTABLE_SELECTOR)
    assert "MatchLabels" not in collapse_literals(IMMUTABLE_SELECTOR)


def test_a_message_without_clauses_is_clipped_with_an_ellipsis() -> None:
    line = condense("x" * 500, 50)
    assert len(line) == 50
    assert line.endswith("…")
