#!/usr/bin/env bash
# Regenerates fixtures/wakeword/*.wav (committed; 16 kHz mono) with espeak-ng + sox, in voices
# the shipped reference was NOT built from (see scripts/make_wakeword.sh):
#   phrase_question.wav  "hey firstword" + 120 ms + "what is the capital of France?" (en-gb-x-gbcwmd+m6)
#   phrase_alone.wav     "hey firstword" (en-us+f4, 170 wpm)
#   no_phrase.wav        a question without the phrase, with "first" and "word" in it (en-us+f4)
#   followup.wav         "how many people live there?" (en-gb-x-gbcwmd+m6)
# Each with 400 ms of silence before and 600 ms after.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
D=fixtures/wakeword; mkdir -p "$D"; T="$(mktemp -d)"; trap 'rm -rf "$T"' EXIT
say() { # voice speed text out
  espeak-ng -v "$1" -s "$2" -w "$T/r.wav" "$3"
  sox "$T/r.wav" -r 16000 -c 1 -b 16 "$4" silence 1 0.001 0.1% reverse silence 1 0.001 0.1% reverse
}
say en-gb-x-gbcwmd+m6 160 "hey firstword" "$T/p.wav"
say en-gb-x-gbcwmd+m6 160 "what is the capital of France?" "$T/q.wav"
sox -n -r 16000 -c 1 -b 16 "$T/g.wav" trim 0 0.12
sox "$T/p.wav" "$T/g.wav" "$T/q.wav" "$D/phrase_question.wav" pad 0.4 0.6
say en-us+f4 170 "hey firstword" "$T/a.wav" && sox "$T/a.wav" "$D/phrase_alone.wav" pad 0.4 0.6
say en-us+f4 165 "what was the first word you learned to read at school?" "$T/n.wav" && sox "$T/n.wav" "$D/no_phrase.wav" pad 0.4 0.6
say en-gb-x-gbcwmd+m6 160 "how many people live there?" "$T/f.wav" && sox "$T/f.wav" "$D/followup.wav" pad 0.4 0.6
for f in "$D"/*.wav; do echo "$f $(soxi -D "$f") s"; done
