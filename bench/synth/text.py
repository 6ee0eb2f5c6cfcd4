"""What the synthetic speakers say: a read-speech grammar, keywords, FSC commands, SLURP templates.

Everything is plain lower-case words without digits or abbreviations (espeak would expand
them and the words would no longer match the transcript). Choices inside a word class follow
a Zipf law over the class's list order, so a corpus has frequent function words, a head of
common content words and a long tail of rare ones — the spread CCA-word and MI need.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ZIPF_EXPONENT = 1.1


def _words(s: str) -> tuple[str, ...]:
    return tuple(s.split())


DETERMINERS = _words("the a this that every some my his her our their one no each another")
NAMES = _words(
    "john mary peter anna thomas laura david helen robert sarah james emma william alice george lucy "
    "henry clara arthur martha edward rose walter grace samuel ellen oliver nora simon julia"
)
NOUNS = _words(
    "man woman house door window road river water tree garden child dog horse table letter book city "
    "morning night friend mother father boy girl king ship room hand voice street church field wall "
    "village country stone bird fire paper school teacher doctor farmer captain soldier mountain forest "
    "island bridge kitchen chair bottle basket coat hat shoe apple bread cheese cake letter glass clock "
    "picture garden hill lake boat train station market shop window flower wind storm rain cloud sun "
    "moon star cottage castle tower lamp candle ring box key coin purse wagon cart engine machine "
    "pencil drawer blanket pillow mirror ladder rope hammer barrel bucket kettle lantern carpet curtain "
    "meadow orchard valley harbour cliff desert jungle canyon glacier volcano meadow parrot rabbit "
    "squirrel turtle dolphin tiger eagle falcon sparrow pigeon spider beetle violin trumpet guitar "
    "piano drum painting sculpture journal diary telescope compass anchor saddle blossom pebble "
    "feather cushion cabinet chimney balcony corridor staircase"
)
ADJECTIVES = _words(
    "old little good great small young long white black red green dark cold warm quiet happy strange "
    "bright heavy empty tall gentle broken sudden ancient careful clever curious distant eager famous "
    "fierce golden hollow honest hungry lonely narrow patient polite proud rapid silent simple steady "
    "tender tiny wooden woolen yellow purple silver muddy rusty dusty frozen crooked shiny wrinkled "
    "peaceful mysterious magnificent"
)
VERBS_T = _words(
    "saw found took made gave brought held opened carried left kept told called watched followed "
    "asked wanted needed liked heard pushed pulled painted cleaned visited built washed closed "
    "dropped lifted moved filled answered remembered noticed covered mended described borrowed "
    "admired polished guarded collected delivered examined rescued sketched whispered"
)
VERBS_I = _words(
    "walked waited smiled laughed slept stood sat ran turned listened worked danced fell cried "
    "wandered hurried paused trembled shouted vanished rested stumbled lingered shivered glanced"
)
ADVERBS = _words(
    "then again slowly quickly quietly often never always suddenly softly together alone early late "
    "gladly rarely eagerly calmly gently nearly patiently barely cheerfully"
)
PREPOSITIONS = _words("in on at by with from near under over behind beside across through toward along")
SAY_VERBS = _words("said thought knew believed felt hoped feared")
CONJUNCTIONS = _words("and but so")

SC_KEYWORDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
SC_OTHER_WORDS = ("bed", "bird", "cat", "dog", "happy", "house", "marvin", "sheila", "tree", "wow")


def zipf_choice(rng: np.random.Generator, items: tuple[str, ...]) -> str:
    """One item, rank r (list order) drawn with probability proportional to 1 / r**s."""
    w = 1.0 / np.arange(1, len(items) + 1) ** ZIPF_EXPONENT
    return items[int(rng.choice(len(items), p=w / w.sum()))]


def _noun_phrase(rng: np.random.Generator) -> list[str]:
    if rng.random() < 0.15:
        return [zipf_choice(rng, NAMES)]
    words = [zipf_choice(rng, DETERMINERS)]
    for _ in range(int(rng.choice(3, p=[0.55, 0.35, 0.10]))):
        words.append(zipf_choice(rng, ADJECTIVES))
    words.append(zipf_choice(rng, NOUNS))
    if words[0] == "a" and words[1][0] in "aeiou":
        words[0] = "an"
    return words


def _clause(rng: np.random.Generator) -> list[str]:
    subject = _noun_phrase(rng)
    if rng.random() < 0.6:
        words = subject + [zipf_choice(rng, VERBS_T)] + _noun_phrase(rng)
    else:
        words = subject + [zipf_choice(rng, VERBS_I)]
    if rng.random() < 0.3:
        words.append(zipf_choice(rng, ADVERBS))
    if rng.random() < 0.5:
        words += [zipf_choice(rng, PREPOSITIONS)] + _noun_phrase(rng)
    return words


def read_sentence(rng: np.random.Generator, min_words: int = 4, max_words: int = 15) -> list[str]:
    """A LibriSpeech-like read sentence of `min_words`..`max_words` words."""
    while True:
        r = rng.random()
        if r < 0.6:
            words = _clause(rng)
        elif r < 0.8:
            words = _clause(rng) + [zipf_choice(rng, CONJUNCTIONS)] + _clause(rng)
        else:
            words = _noun_phrase(rng) + [zipf_choice(rng, SAY_VERBS), "that"] + _clause(rng)
        if min_words <= len(words) <= max_words:
            return words


def vocabulary() -> set[str]:
    """Every word type the read-speech grammar can produce."""
    out = {"an", "that"}
    for group in (DETERMINERS, NAMES, NOUNS, ADJECTIVES, VERBS_T, VERBS_I, ADVERBS, PREPOSITIONS, SAY_VERBS, CONJUNCTIONS):
        out.update(group)
    return out


# ---------------------------------------------------------------- Fluent Speech Commands

FSC_ACTIONS = ("activate", "bring", "change language", "deactivate", "decrease", "increase")
FSC_OBJECTS = ("none", "music", "lights", "volume", "heat", "lamp", "newspaper", "juice", "socks", "shoes",
               "Chinese", "Korean", "English", "German")
FSC_LOCATIONS = ("none", "kitchen", "bedroom", "washroom")

# (phrasing, action, object, takes_location). "{loc}" is where a location phrase goes.
_FSC_PHRASES: tuple[tuple[str, str, str, bool], ...] = (
    ("turn on the lights{loc}", "activate", "lights", True),
    ("switch on the lights{loc}", "activate", "lights", True),
    ("lights on{loc}", "activate", "lights", True),
    ("turn the lights on{loc}", "activate", "lights", True),
    ("turn off the lights{loc}", "deactivate", "lights", True),
    ("switch off the lights{loc}", "deactivate", "lights", True),
    ("lights off{loc}", "deactivate", "lights", True),
    ("turn the lights off{loc}", "deactivate", "lights", True),
    ("increase the heating{loc}", "increase", "heat", True),
    ("turn up the heat{loc}", "increase", "heat", True),
    ("heat up{loc}", "increase", "heat", True),
    ("make it warmer{loc}", "increase", "heat", True),
    ("decrease the heating{loc}", "decrease", "heat", True),
    ("turn down the heat{loc}", "decrease", "heat", True),
    ("make it cooler{loc}", "decrease", "heat", True),
    ("increase the temperature{loc}", "increase", "heat", True),
    ("decrease the temperature{loc}", "decrease", "heat", True),
    ("increase the volume", "increase", "volume", False),
    ("turn up the volume", "increase", "volume", False),
    ("louder please", "increase", "volume", False),
    ("make it louder", "increase", "volume", False),
    ("volume up", "increase", "volume", False),
    ("decrease the volume", "decrease", "volume", False),
    ("turn down the volume", "decrease", "volume", False),
    ("make it quieter", "decrease", "volume", False),
    ("volume down", "decrease", "volume", False),
    ("play the music", "activate", "music", False),
    ("turn on the music", "activate", "music", False),
    ("put on some music", "activate", "music", False),
    ("start the music", "activate", "music", False),
    ("stop the music", "deactivate", "music", False),
    ("pause the music", "deactivate", "music", False),
    ("turn off the music", "deactivate", "music", False),
    ("turn on the lamp", "activate", "lamp", False),
    ("switch on the lamp", "activate", "lamp", False),
    ("lamp on", "activate", "lamp", False),
    ("turn off the lamp", "deactivate", "lamp", False),
    ("switch off the lamp", "deactivate", "lamp", False),
    ("lamp off", "deactivate", "lamp", False),
    ("bring me the newspaper", "bring", "newspaper", False),
    ("get me the newspaper", "bring", "newspaper", False),
    ("fetch the newspaper", "bring", "newspaper", False),
    ("bring me some juice", "bring", "juice", False),
    ("get me some juice", "bring", "juice", False),
    ("fetch me a juice", "bring", "juice", False),
    ("bring me my socks", "bring", "socks", False),
    ("get my socks", "bring", "socks", False),
    ("fetch my socks", "bring", "socks", False),
    ("bring me my shoes", "bring", "shoes", False),
    ("get my shoes", "bring", "shoes", False),
    ("fetch my shoes", "bring", "shoes", False),
    ("change language to {lang}", "change language", "{lang}", False),
    ("switch the language to {lang}", "change language", "{lang}", False),
    ("set the language to {lang}", "change language", "{lang}", False),
    ("i want to use {lang}", "change language", "{lang}", False),
    ("language {lang}", "change language", "{lang}", False),
    ("change language", "change language", "none", False),
    ("switch the language", "change language", "none", False),
    ("use a different language", "change language", "none", False),
)
_FSC_LANGS = ("Chinese", "Korean", "English", "German")


@dataclass(frozen=True)
class FscCommand:
    transcription: str  # as FSC writes it: sentence case, e.g. "Turn on the lights in the kitchen"
    action: str
    object: str
    location: str


def _fsc_variants() -> dict[tuple[str, str, str], list[str]]:
    """(action, object, location) -> every phrasing of it, in sentence case."""
    out: dict[tuple[str, str, str], list[str]] = {}
    for phrase, action, obj, takes_loc in _FSC_PHRASES:
        for lang in _FSC_LANGS if "{lang}" in phrase else (None,):
            said = phrase if lang is None else phrase.replace("{lang}", lang.lower())
            for loc in FSC_LOCATIONS if takes_loc else ("none",):
                text = said.replace("{loc}", "" if loc == "none" else f" in the {loc}")
                out.setdefault((action, lang or obj, loc), []).append(text[0].upper() + text[1:])
    return out


_FSC_VARIANTS = _fsc_variants()
FSC_INTENTS: tuple[tuple[str, str, str], ...] = tuple(sorted(_FSC_VARIANTS))  # 31, as in the real FSC


def fsc_command(rng: np.random.Generator, intent: tuple[str, str, str] | None = None) -> FscCommand:
    """A spoken command for `intent` (action, object, location), or for a random one."""
    if intent is None:
        intent = FSC_INTENTS[int(rng.integers(len(FSC_INTENTS)))]
    texts = _FSC_VARIANTS[intent]
    return FscCommand(texts[int(rng.integers(len(texts)))], *intent)


# ---------------------------------------------------------------- SLURP

_SLOTS: dict[str, tuple[str, ...]] = {
    "time": _words("seven eight nine ten eleven noon midnight") + ("half past six", "quarter to eight", "six thirty"),
    "day": _words("today tomorrow monday tuesday wednesday thursday friday saturday sunday tonight"),
    "event": ("the meeting", "lunch with john", "the dentist", "dinner with my parents", "the football match",
              "the team call", "yoga class"),
    "place": _words("london paris boston berlin madrid chicago tokyo dublin rome seattle"),
    "person": _words("john mary sarah david anna peter lucy james emma thomas"),
    "genre": _words("jazz rock classical pop blues reggae country folk"),
    "artist": ("the beatles", "adele", "madonna", "queen", "coldplay", "elvis"),
    "station": ("jazz radio", "the news station", "classic rock radio", "the local station"),
    "podcast": ("the history podcast", "my science podcast", "the comedy podcast", "the daily news podcast"),
    "room": _words("kitchen bedroom bathroom hallway office garage"),
    "topic": _words("football politics science business weather technology music travel"),
    "food": ("a pizza", "some sushi", "a burger", "chinese food", "a curry", "fish and chips", "a salad"),
    "dish": _words("pancakes lasagna risotto omelette soup brownies curry pasta"),
    "vehicle": _words("train bus taxi plane ferry"),
    "item": _words("milk eggs bread apples coffee butter rice cheese"),
    "thing": ("the moon", "the eiffel tower", "the amazon river", "mount everest", "the pacific ocean"),
}

# (scenario, action) -> phrasings with {slot} fillers
SLURP_TEMPLATES: dict[tuple[str, str], tuple[str, ...]] = {
    ("alarm", "set"): ("wake me up at {time} {day}", "set an alarm for {time}", "please set my alarm for {time} {day}"),
    ("alarm", "query"): ("what alarms do i have", "when is my alarm set for {day}", "show me my alarms"),
    ("alarm", "remove"): ("cancel my alarm for {time}", "delete the alarm for {day}", "remove all my alarms"),
    ("calendar", "set"): ("remind me about {event} {day}", "add {event} to my calendar for {day}",
                          "put {event} in my calendar at {time}"),
    ("calendar", "query"): ("what is on my calendar {day}", "do i have anything planned {day}",
                            "when is {event}"),
    ("calendar", "remove"): ("remove {event} from my calendar", "cancel {event} {day}",
                             "delete all events for {day}"),
    ("weather", "query"): ("what is the weather like in {place}", "will it rain {day}", "is it cold in {place} {day}",
                           "do i need an umbrella {day}"),
    ("music", "query"): ("what song is playing", "who sings this song", "what is the name of this song"),
    ("music", "likeness"): ("i really like this song", "i love {genre} music", "remember that i like {artist}"),
    ("play", "music"): ("play some {genre}", "play songs by {artist}", "i want to hear some {genre} music"),
    ("play", "radio"): ("play {station}", "turn on the radio", "tune in to {station}"),
    ("play", "podcasts"): ("play {podcast}", "play the next episode of {podcast}", "resume my podcast"),
    ("iot", "hue_lightson"): ("turn on the lights in the {room}", "switch the {room} lights on", "lights on please"),
    ("iot", "hue_lightsoff"): ("turn off the lights in the {room}", "switch the {room} lights off",
                               "turn the lights off"),
    ("iot", "cleaning"): ("start the vacuum cleaner", "clean the {room}", "turn on the robot vacuum"),
    ("iot", "coffee"): ("make me a coffee", "start the coffee machine", "i would like a cup of coffee"),
    ("email", "sendemail"): ("send an email to {person}", "email {person} about {event}",
                             "write an email to {person} saying i am late"),
    ("email", "query"): ("do i have any new emails", "check my inbox", "did {person} send me an email"),
    ("news", "query"): ("what is the latest news about {topic}", "tell me the news", "any news about {topic} {day}"),
    ("datetime", "query"): ("what time is it in {place}", "what is the date {day}", "what day is it"),
    ("takeaway", "order"): ("order {food} for dinner", "i want to order {food}", "get me {food} delivered"),
    ("takeaway", "query"): ("has my food arrived yet", "where is my takeaway", "which restaurants deliver {food}"),
    ("cooking", "recipe"): ("how do i make {dish}", "give me a recipe for {dish}", "what do i need to cook {dish}"),
    ("transport", "ticket"): ("book a {vehicle} ticket to {place}", "buy me a ticket to {place} {day}",
                              "i need a {vehicle} ticket for {day}"),
    ("transport", "query"): ("when is the next {vehicle} to {place}", "is the {vehicle} on time",
                             "how long does the {vehicle} take to {place}"),
    ("transport", "taxi"): ("call me a taxi", "book a taxi to {place}", "i need a taxi at {time}"),
    ("general", "joke"): ("tell me a joke", "make me laugh", "do you know any good jokes"),
    ("lists", "createoradd"): ("add {item} to my shopping list", "put {item} on the list",
                               "create a new shopping list"),
    ("lists", "query"): ("what is on my shopping list", "read me my list", "do i have {item} on my list"),
    ("qa", "factoid"): ("how big is {thing}", "tell me about {thing}", "how far away is {thing}"),
    ("qa", "definition"): ("what does the word {dish} mean", "define the word {genre}", "what is the meaning of {topic}"),
}


@dataclass(frozen=True)
class SlurpText:
    sentence: str
    scenario: str
    action: str
    annotation: str  # SLURP's `sentence_annotation`: slot fillers in brackets

    @property
    def intent(self) -> str:
        return f"{self.scenario}_{self.action}"


def slurp_text(rng: np.random.Generator, intent: tuple[str, str] | None = None) -> SlurpText:
    """A SLURP-style request for `intent` (scenario, action), or for a random one."""
    keys = list(SLURP_TEMPLATES)
    if intent is None:
        intent = keys[int(rng.integers(len(keys)))]
    templates = SLURP_TEMPLATES[intent]
    template = templates[int(rng.integers(len(templates)))]
    sentence, annotated = template, template
    while "{" in sentence:
        start = sentence.index("{")
        slot = sentence[start + 1 : sentence.index("}", start)]
        values = _SLOTS[slot]
        value = values[int(rng.integers(len(values)))]
        sentence = sentence.replace("{" + slot + "}", value, 1)
        annotated = annotated.replace("{" + slot + "}", f"[{slot} : {value}]", 1)
    return SlurpText(sentence, intent[0], intent[1], annotated)


def spoken_words(text: str) -> list[str]:
    """The words a transcript is spoken as (lower case, apostrophes kept)."""
    return text.lower().split()
