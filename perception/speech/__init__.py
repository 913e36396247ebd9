"""Speech in: audio files and PCM16 buffers, voice activity, Whisper recognition, WER.

- :func:`load_audio` (WAV/FLAC, any rate and channel count -> 16 kHz mono float32),
- :class:`Segmenter` (streaming Silero VAD, with mute for the robot's own voice),
- :class:`Recognizer` (``faster-whisper``, local sha256-checked weights, vocabulary prompt,
  n-best with calibrated confidences), :func:`accept_command` (the no-command-from-noise rule),
- :func:`normalize` and :func:`corpus_wer`.

ROS-free; imported as ``katazuke.perception.speech``. Heavy packages (faster-whisper,
onnxruntime, soundfile) are imported only when a class is built or a file is read.
"""
from katazuke.perception.speech.audio import (AUDIO_SUFFIXES, SAMPLE_RATE, AudioFileError,
                                              float_to_pcm16, load_audio, pcm16_to_float,
                                              to_mono_16k)
from katazuke.perception.speech.espeak import synthesize
from katazuke.perception.speech.calibration import (FEATURES, Calibration,
                                                    expected_calibration_error, fit_platt)
from katazuke.perception.speech.models import ENGINES, ModelFileError, model_dir
from katazuke.perception.speech.recognizer import (RecognitionResult, Recognizer,
                                                   RecognizerConfig, vocabulary_prompt)
from katazuke.perception.speech.text import WerCounts, corpus_wer, normalize
from katazuke.perception.speech.vad import (Segmenter, SegmenterConfig, Utterance,
                                            accept_command)

__all__ = ["SAMPLE_RATE", "AUDIO_SUFFIXES", "AudioFileError", "load_audio", "to_mono_16k",
           "pcm16_to_float", "float_to_pcm16", "FEATURES", "Calibration", "fit_platt",
           "expected_calibration_error", "ENGINES", "ModelFileError", "model_dir",
           "Recognizer", "RecognizerConfig", "RecognitionResult", "vocabulary_prompt",
           "normalize", "corpus_wer", "WerCounts", "Segmenter", "SegmenterConfig", "Utterance",
           "accept_command", "synthesize"]
