"""LocalAgreement on plain token lists (no model). Tokens >= 100 start a word; smaller ones continue it."""

from engine.agreement import LocalAgreement, common_prefix


def starts_word(token: int) -> bool:
    return token >= 100


def test_common_prefix():
    assert common_prefix([[1, 2, 3], [1, 2, 4], [1, 2]]) == [1, 2]
    assert common_prefix([[5], [6]]) == []
    assert common_prefix([]) == []


def test_needs_n_hypotheses_before_committing():
    policy = LocalAgreement(3, starts_word)
    assert policy.update([100, 101, 102]) == []
    assert policy.update([100, 101, 102]) == []
    # agreed [100, 101]; the next token, 103, starts a word, so the word 101 is complete
    assert policy.update([100, 101, 103]) == [100, 101]
    assert policy.tentative == [103]


def test_commits_whole_words_only():
    policy = LocalAgreement(2, starts_word)
    policy.update([100, 1, 2, 101, 3])
    # agreed [100, 1, 2, 101, 3] vs [100, 1, 2, 101, 4] → [100, 1, 2, 101]; 101's word is unfinished (3 vs 4)
    assert policy.update([100, 1, 2, 101, 4]) == [100, 1, 2]
    assert policy.tentative == [101, 4]


def test_no_commit_inside_a_word():
    policy = LocalAgreement(2, starts_word)
    policy.update([100, 1, 2])
    assert policy.update([100, 1, 3]) == []  # the word that starts with 100 is not agreed to its end


def test_whole_hypothesis_agreed_is_committed():
    policy = LocalAgreement(2, starts_word)
    policy.update([100, 1, 101])
    assert policy.update([100, 1, 101]) == [100, 1, 101]
    assert policy.tentative == []


def test_history_is_trimmed_after_a_commit():
    policy = LocalAgreement(2, starts_word)
    policy.update([100, 101, 5])
    assert policy.update([100, 101, 6]) == [100]
    # next hypothesis is conditioned on the commit, so it carries only the continuation
    assert policy.update([101, 7, 102]) == []  # [101, 6] vs [101, 7, 102]: 101's word disagrees
    assert policy.update([101, 7, 102, 103]) == [101, 7, 102]
    policy.reset()
    assert policy.tentative == []
