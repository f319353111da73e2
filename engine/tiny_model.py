"""A tiny, randomly initialised SeamlessM4T v2 that runs the real ``transformers`` code offline.

Model weights cannot be downloaded in CI, so tests and offline UI work use this model: the architecture, tokenizer
type, feature extractor and generation config have the same shape as ``facebook/seamless-m4t-v2-large``, only much
smaller. Its outputs are meaningless; what it proves is that Parley drives the real model code correctly.

The build is deterministic (fixed seed, fixed corpus) and cached on disk: the first call builds it in a few seconds,
later calls load it from the cache folder.
"""

from __future__ import annotations

import csv
import logging
import os
import shutil
import tempfile
from pathlib import Path

ASSETS = Path(__file__).resolve().parent.parent / "assets"
CORPUS_TSV = ASSETS / "tiny_corpus.tsv"
#: Bump when the recipe changes, so stale caches are rebuilt rather than reused.
TINY_VERSION = 2
SEED = 0
SPM_VOCAB_SIZE = 400
#: Spread of the random weights. At transformers' default (0.02) the tiny decoder's output ignored both the audio and
#: the target language (every input gave the same text), so tests could not tell one session's translation from
#: another's; at 0.2 (with the n-gram rule below) 12 of 12 (audio, target) pairs tried gave different text.
INIT_STD = 0.2
#: Random decoders repeat one token forever ("asasasas…", a single word); forbidding repeated bigrams in the tiny
#: model's generation config keeps its gibberish made of several words, as real text is, so word-level stages
#: (toxicity spans, gender terms, subtitles) have something to work on.
NO_REPEAT_NGRAM = 2
#: Languages the tiny model accepts as text targets; all but ``heb`` can also be spoken (as in the real model,
#: some text languages have no voice).
TINY_LANGUAGES = ("eng", "spa", "fra", "deu", "ita", "por", "rus", "pol", "arb", "hin", "cmn", "jpn", "tur", "heb")
TINY_SPEECH_LANGUAGES = tuple(code for code in TINY_LANGUAGES if code != "heb")
TINY_SPEAKERS = 8
UNIT_VOCAB_SIZE = 64
UNIT_OFFSET = 4  # control symbols before the first unit, as in the real model
UNIT_UNK = 3  # the last control symbol (BOS 0, pad 1, EOS 2, UNK 3)

log = logging.getLogger(__name__)


def tiny_model_dir(cache_dir: Path) -> Path:
    return cache_dir / f"tiny-seamless-m4t-v2-{TINY_VERSION}"


def ensure_tiny_model(cache_dir: Path) -> Path:
    """Return the folder of the tiny model, building it first if the cache does not hold it.

    Built in a temporary folder and renamed into place, so two processes building at once never see half a model.
    """
    target = tiny_model_dir(cache_dir)
    if (target / "config.json").exists():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    log.info("Building the tiny offline model in %s", target)
    staging = Path(tempfile.mkdtemp(prefix=".tiny-build-", dir=cache_dir))
    try:
        build_tiny_model(staging)
        try:
            os.rename(staging, target)
        except OSError:
            if not (target / "config.json").exists():  # lost a race only if the winner finished
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _corpus_sentences() -> list[str]:
    with CORPUS_TSV.open(encoding="utf-8") as f:
        rows = csv.reader((line for line in f if not line.startswith("#")), delimiter="\t")
        return [row[1] for row in rows if len(row) == 2]


def build_tiny_model(dest: Path) -> None:
    """Train the tokenizer, initialise the model with a fixed seed and save both to ``dest``."""
    import sentencepiece as spm
    import torch
    from transformers import (
        SeamlessM4TFeatureExtractor,
        SeamlessM4TTokenizer,
        SeamlessM4Tv2Config,
        SeamlessM4Tv2Model,
    )

    dest.mkdir(parents=True, exist_ok=True)
    sentences = _corpus_sentences()
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus.txt"
        corpus.write_text("\n".join(sentences) + "\n", encoding="utf-8")
        spm.SentencePieceTrainer.train(
            input=str(corpus),
            model_prefix=str(Path(tmp) / "spm"),
            vocab_size=SPM_VOCAB_SIZE,
            model_type="bpe",
            character_coverage=1.0,
            num_threads=1,
            seed_sentencepiece_size=100_000,
            minloglevel=2,
        )
        shutil.copy(Path(tmp) / "spm.model", Path(tmp) / "sentencepiece.bpe.model")
        tokenizer = SeamlessM4TTokenizer.from_pretrained(
            tmp,
            additional_special_tokens=[f"__{code}__" for code in TINY_LANGUAGES],
            src_lang="eng",
            tgt_lang="spa",
        )
    tokenizer.save_pretrained(dest)

    vocab = tokenizer.get_vocab()
    chars = sorted({ch for sentence in sentences for ch in sentence.replace(" ", "▁")} | {"▁"})
    char_to_id = {"<pad>": 0, "<unk>": 1, "<s>": 2, "</s>": 3} | {ch: i + 4 for i, ch in enumerate(chars)}

    config = SeamlessM4Tv2Config(
        vocab_size=len(tokenizer),
        t2u_vocab_size=UNIT_VOCAB_SIZE + UNIT_OFFSET,
        unit_hifi_gan_vocab_size=UNIT_VOCAB_SIZE + UNIT_OFFSET,
        vocoder_offset=UNIT_OFFSET,
        char_vocab_size=len(char_to_id),
        hidden_size=32,
        encoder_layers=2,
        decoder_layers=2,
        encoder_ffn_dim=64,
        decoder_ffn_dim=64,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_layerdrop=0.0,
        decoder_layerdrop=0.0,
        speech_encoder_layers=2,
        speech_encoder_attention_heads=2,
        speech_encoder_intermediate_size=64,
        speech_encoder_layerdrop=0.0,
        t2u_encoder_layers=1,
        t2u_decoder_layers=1,
        t2u_encoder_ffn_dim=64,
        t2u_decoder_ffn_dim=64,
        t2u_encoder_attention_heads=2,
        t2u_decoder_attention_heads=2,
        t2u_variance_predictor_embed_dim=32,
        t2u_variance_predictor_hidden_dim=16,
        max_position_embeddings=1024,
        t2u_max_position_embeddings=2048,
        upsample_initial_channel=32,
        unit_embed_dim=16,
        lang_embed_dim=4,
        spkr_embed_dim=4,
        vocoder_num_langs=len(TINY_SPEECH_LANGUAGES),
        vocoder_num_spkrs=TINY_SPEAKERS,
        max_new_tokens=64,
        initializer_range=INIT_STD,
    )
    torch.manual_seed(SEED)
    model = SeamlessM4Tv2Model(config).eval()
    # A trained text-to-unit model never predicts the BOS or UNK control symbols; random weights would, and both
    # map below zero once the vocoder offset is taken off (transformers' own generate then fails). Zero logits keep
    # them below the best unit.
    with torch.no_grad():
        model.t2u_model.lm_head.weight[[config.t2u_bos_token_id, UNIT_UNK]] = 0.0

    gen = model.generation_config
    gen.text_decoder_lang_to_code_id = {code: vocab[f"__{code}__"] for code in TINY_LANGUAGES}
    gen.t2u_lang_code_to_id = {code: i for i, code in enumerate(TINY_SPEECH_LANGUAGES)}
    gen.vocoder_lang_code_to_id = {code: i for i, code in enumerate(TINY_SPEECH_LANGUAGES)}
    gen.id_to_text = {str(i): token for token, i in vocab.items()}
    gen.char_to_id = char_to_id
    gen.max_new_tokens = 64
    gen.no_repeat_ngram_size = NO_REPEAT_NGRAM
    # Without this, save_pretrained regenerates the generation config from the model config and the language
    # maps above are silently dropped on reload.
    gen._from_model_config = False
    model.save_pretrained(dest)
    SeamlessM4TFeatureExtractor().save_pretrained(dest)
    (dest / "README.md").write_text(
        "Tiny randomly initialised SeamlessM4T v2 built by Parley for offline tests. Output is meaningless.\n",
        encoding="utf-8",
    )
