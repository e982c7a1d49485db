"""Curate the world's object assets from the Noto Emoji images of ``emoji-datasource-google``.

Developer tool, run once (the result is committed; nothing is fetched at install or run time):

    cd /tmp/x && npm pack emoji-datasource-google && tar xzf emoji-datasource-google-*.tgz
    python scripts/build_object_assets.py /tmp/x/package

Keeps concrete everyday objects (animals, plants, food and drink, vehicles, buildings and places,
household objects, tools, clothing, sports and music items, weather), drops flags, symbols,
letters, faces, people, skin tones and near-duplicates, gives each kept emoji a canonical name,
aliases, a category/subcategory (hypernyms), its related concepts ("cat face" ~ "cat") and a fixed
train/held-out split (about 15% held out, by a seeded hash of the related group, so that related
concepts always share a split). Writes ``vltools/world/assets/objects/`` (PNGs, concepts.json).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "vltools" / "world" / "assets" / "objects"
SPLIT_SALT = "vltools-world-objects-v1"
HELDOUT_PERCENT = 15

# emoji subcategory -> (category, subcategory): the hypernym chain "dog -> mammal -> animal"
SUBCATS = {
    "animal-mammal": ("animal", "mammal"),
    "animal-bird": ("animal", "bird"),
    "animal-marine": ("animal", "sea animal"),
    "animal-bug": ("animal", "insect"),
    "animal-reptile": ("animal", "reptile"),
    "animal-amphibian": ("animal", "amphibian"),
    "plant-flower": ("plant", "flower"),
    "plant-other": ("plant", "plant"),
    "food-fruit": ("food", "fruit"),
    "food-vegetable": ("food", "vegetable"),
    "food-prepared": ("food", "dish"),
    "food-asian": ("food", "asian dish"),
    "food-sweet": ("food", "dessert"),
    "drink": ("drink", "drink"),
    "dishware": ("household object", "kitchenware"),
    "transport-ground": ("vehicle", "land vehicle"),
    "transport-air": ("vehicle", "aircraft"),
    "transport-water": ("vehicle", "boat"),
    "place-building": ("place", "building"),
    "place-religious": ("place", "building"),
    "place-geographic": ("place", "landscape"),
    "place-other": ("place", "attraction"),
    "place-map": ("object", "map"),
    "hotel": ("object", "travel item"),
    "sky & weather": ("weather", "sky and weather"),
    "time": ("object", "timepiece"),
    "sport": ("sports item", "sports equipment"),
    "award-medal": ("sports item", "award"),
    "game": ("toy", "game"),
    "event": ("object", "celebration item"),
    "arts & crafts": ("object", "arts and crafts"),
    "clothing": ("clothing", "clothing"),
    "household": ("household object", "household"),
    "lock": ("household object", "lock"),
    "tool": ("tool", "tool"),
    "musical-instrument": ("music item", "musical instrument"),
    "music": ("music item", "audio"),
    "sound": ("music item", "audio"),
    "computer": ("electronics", "computer"),
    "phone": ("electronics", "phone"),
    "light & video": ("electronics", "light and camera"),
    "office": ("office item", "office supplies"),
    "book-paper": ("office item", "book and paper"),
    "mail": ("office item", "mail"),
    "writing": ("office item", "writing"),
    "science": ("object", "science"),
    "medical": ("object", "medical"),
    "money": ("object", "money"),
    "other-object": ("object", "object"),
}
# some emoji categories are refined per item (a "sled" is sport, a "tractor" a land vehicle...)
CATEGORY_OVERRIDE = {
    "traffic light": ("object", "street furniture"),
    "stop sign": ("object", "street furniture"),
    "construction sign": ("object", "street furniture"),
    "bus stop": ("object", "street furniture"),
    "fuel pump": ("object", "street furniture"),
    "police light": ("object", "street furniture"),
    "oil drum": ("object", "container"),
    "highway": ("place", "road"),
    "railway track": ("place", "road"),
    "station": ("place", "building"),
    "wheel": ("object", "vehicle part"),
    "roller skate": ("sports item", "sports equipment"),
    "skateboard": ("sports item", "sports equipment"),
    "wheelchair": ("object", "medical"),
    "door": ("household object", "furniture"),
    "bed": ("household object", "furniture"),
    "chair": ("household object", "furniture"),
    "couch and lamp": ("household object", "furniture"),
    "window": ("household object", "furniture"),
    "fire": ("weather", "fire"),
    "umbrella": ("object", "umbrella"),
    "closed umbrella": ("object", "umbrella"),
    "snowman": ("object", "snowman"),
    "thermometer": ("object", "instrument"),
    "feather": ("animal", "bird"),
    "wing": ("animal", "bird"),
    "spider web": ("animal", "insect"),
    "bricks": ("object", "material"),
    "rock": ("object", "material"),
    "wood": ("object", "material"),
    "hut": ("place", "building"),
    "bow and arrow": ("tool", "weapon"),
    "dagger": ("tool", "weapon"),
    "swords": ("tool", "weapon"),
    "shield": ("tool", "weapon"),
    "bomb": ("tool", "weapon"),
    "boomerang": ("toy", "game"),
}

# exact (lower-case emoji name) -> canonical name; None drops the emoji
RENAME: dict[str, str | None] = {
    # food and drink
    "slice of pizza": "pizza",
    "aubergine": "eggplant",
    "ear of maize": "corn",
    "kiwifruit": "kiwi",
    "red apple": "apple",
    "hot pepper": "chili pepper",
    "leafy green": "lettuce",
    "brown mushroom": "brown mushroom",
    "ear of rice": "rice plant",
    "tangerine": "tangerine",
    "cooking": "frying pan",
    "shallow pan of food": "paella",
    "stuffed flatbread": "gyro",
    "bowl with spoon": "bowl of cereal",
    "pot of food": "stew",
    "hocho": "kitchen knife",
    "fork and knife with plate": "plate",
    "teacup without handle": "teacup",
    "hot beverage": "coffee",
    "beverage box": "juice box",
    "sake bottle and cup": "sake",
    "bottle with popping cork": "champagne",
    "soft ice cream": "soft serve",
    "fish cake with swirl design": "fish cake",
    "curry and rice": "curry",
    "steaming bowl": "noodle soup",
    "spaghetti": "spaghetti",
    "pouring liquid": None,
    "meat on bone": "meat on the bone",
    "poultry leg": "chicken leg",
    "cut of meat": "steak",
    "roasted sweet potato": "sweet potato",
    "root vegetable": "radish",
    # animals and plants
    "dromedary camel": "camel",
    "bactrian camel": "two-hump camel",
    "frog face": "frog",
    "bear face": "bear",
    "panda face": "panda",
    "hamster face": "hamster",
    "wolf face": "wolf",
    "lion face": "lion",
    "fox face": "fox",
    "unicorn face": "unicorn",
    "giraffe face": "giraffe",
    "zebra face": "zebra",
    "pig nose": None,
    "paw prints": None,
    "lady beetle": "ladybug",
    "honeybee": "bee",
    "spiral shell": "shell",
    "front-facing baby chick": None,
    "hatching chick": None,
    "t-rex": "t-rex",
    "sauropod": "dinosaur",
    "white flower": None,
    "rosette": None,
    "leaf fluttering in wind": None,
    "blossom": "yellow blossom",
    "four leaf clover": "four-leaf clover",
    "deciduous tree": "tree",
    "evergreen tree": "fir tree",
    "spouting whale": "spouting whale",
    "water buffalo": "water buffalo",
    "ram": "ram",
    "boar": "boar",
    # vehicles and places
    "automobile": "car",
    "delivery truck": "truck",
    "articulated lorry": "lorry",
    "recreational vehicle": "suv",
    "horizontal traffic light": "traffic light",
    "vertical traffic light": None,
    "octagonal sign": "stop sign",
    "police cars revolving light": "police light",
    "motorway": "highway",
    "manual wheelchair": "wheelchair",
    "motorized wheelchair": None,
    "oncoming bus": None,
    "oncoming police car": None,
    "oncoming taxi": None,
    "oncoming automobile": None,
    "tram car": None,
    "high-speed train with bullet nose": "bullet train",
    "high-speed train": "high-speed train",
    "train": "train",
    "motorcycle": "motorcycle",
    "racing car": "racing car",
    "small airplane": "small airplane",
    "airplane departure": None,
    "airplane arriving": None,
    "seat": None,
    "suspension railway": None,
    "mountain cableway": None,
    "aerial tramway": "cable car",
    "flying saucer": "ufo",
    "motor boat": "motor boat",
    "passenger ship": "cruise ship",
    "ring buoy": "life buoy",
    "house building": "house",
    "house with garden": "house with garden",
    "derelict house": "derelict house",
    "japanese post office": None,
    "european post office": "post office",
    "love hotel": None,
    "wedding": "chapel",
    "european castle": "castle",
    "brick": "bricks",
    "classical building": "classical building",
    "earth globe europe-africa": "globe",
    "earth globe americas": None,
    "earth globe asia-australia": None,
    "globe with meridians": None,
    "silhouette of japan": None,
    "world map": "world map",
    "foggy": None,
    "night with stars": None,
    "sunrise over mountains": None,
    "sunrise": None,
    "cityscape at dusk": None,
    "sunset over buildings": None,
    "bridge at night": None,
    "hot springs": None,
    "cityscape": None,
    "beach with umbrella": "beach umbrella",
    "snow-capped mountain": "snowy mountain",
    "barber pole": "barber pole",
    "playground slide": "slide",
    # sky and weather
    "black sun with rays": "sun",
    "full moon symbol": "full moon",
    "crescent moon": "crescent moon",
    "cloud with rain": "rain cloud",
    "cloud with snow": "snow cloud",
    "cloud with lightning": "thunder cloud",
    "cloud with lightning and rain": None,
    "sun behind small cloud": None,
    "sun behind large cloud": None,
    "sun behind rain cloud": None,
    "sun behind cloud": "sun behind a cloud",
    "umbrella with rain drops": None,
    "umbrella on ground": None,
    "snowman without snow": None,
    "droplet": "water drop",
    "water wave": "wave",
    "ringed planet": "planet",
    "glowing star": None,
    "shooting star": "shooting star",
    "white medium star": "star",
    "high voltage sign": None,
    "cyclone": None,
    "fog": None,
    "wind face": None,
    "milky way": None,
    # activities
    "wrapped present": "gift",
    "jack-o-lantern": "jack-o'-lantern",
    "firework sparkler": "sparkler",
    "party popper": "party popper",
    "carp streamer": None,
    "pine decoration": None,
    "tanabata tree": None,
    "moon viewing ceremony": None,
    "reminder ribbon": None,
    "red gift envelope": None,
    "japanese dolls": None,
    "admission tickets": "admission tickets",
    "direct hit": "dartboard",
    "billiards": "pool ball",
    "game die": "die",
    "pistol": "water pistol",
    "mahjong tile red dragon": None,
    "playing card black joker": "playing card",
    "flower playing cards": None,
    "sparkles": None,
    "black spade suit": None,
    "black club suit": None,
    "black heart suit": None,
    "black diamond suit": None,
    "video game": "game controller",
    "running shirt with sash": "running shirt",
    "tennis racquet and ball": "tennis racket",
    "ski and ski boot": "skis",
    "basketball and hoop": "basketball",
    "cricket bat and ball": "cricket bat",
    "field hockey stick and ball": "field hockey stick",
    "ice hockey stick and puck": "ice hockey stick",
    "table tennis paddle and ball": "ping pong paddle",
    "badminton racquet and shuttlecock": "badminton racket",
    "lacrosse stick and ball": "lacrosse stick",
    "flag in hole": "golf flag",
    "fishing pole and fish": "fishing rod",
    "second place medal": None,
    "third place medal": None,
    "performing arts": "theatre masks",
    # objects
    "womans hat": "sun hat",
    "womans clothes": "blouse",
    "mans shoe": "shoe",
    "womans sandal": "sandal",
    "womans boots": "boots",
    "rescue worker’s helmet": "rescue helmet",
    "rescue worker's helmet": "rescue helmet",
    "gem stone": "gemstone",
    "drum with drumsticks": "drum",
    "musical keyboard": "piano keyboard",
    "headphone": "headphones",
    "musical note": None,
    "multiple musical notes": None,
    "musical score": None,
    "level slider": None,
    "control knobs": None,
    "film frames": None,
    "izakaya lantern": "red lantern",
    "electric light bulb": "light bulb",
    "electric torch": "flashlight",
    "left-pointing magnifying glass": "magnifying glass",
    "right-pointing magnifying glass": None,
    "banknote with dollar sign": "banknote",
    "banknote with yen sign": None,
    "banknote with euro sign": None,
    "banknote with pound sign": None,
    "money with wings": None,
    "chart with upwards trend and yen sign": None,
    "public address loudspeaker": "loudspeaker",
    "cheering megaphone": "megaphone",
    "speaker with cancellation stroke": None,
    "speaker with one sound wave": None,
    "speaker with three sound waves": None,
    "bell with cancellation stroke": None,
    "clapper board": "clapperboard",
    "videocassette": "videotape",
    "moyai": None,
    "smoking symbol": None,
    "nazar amulet": None,
    "hamsa": None,
    "bubbles": None,
    "hourglass with flowing sand": None,
    "link symbol": None,
    "hammer and wrench": None,
    "hammer and pick": None,
    "broken chain": None,
    "crossed swords": "swords",
    "nut and bolt": "nut and bolt",
    "probing cane": "white cane",
    "personal computer": "laptop",
    "optical disc": "cd",
    "dvd": "dvd",
    "low battery": None,
    "electric plug": "plug",
    "black telephone": "telephone",
    "mobile phone with rightwards arrow at left": None,
    "satellite antenna": "satellite dish",
    "dna double helix": "dna",
    "drop of blood": None,
    "e-mail symbol": None,
    "incoming envelope": None,
    "envelope with downwards arrow above": None,
    "closed mailbox with raised flag": "mailbox",
    "closed mailbox with lowered flag": None,
    "open mailbox with raised flag": None,
    "open mailbox with lowered flag": None,
    "ballot box with ballot": "ballot box",
    "lock with ink pen": None,
    "closed lock with key": None,
    "black scissors": "scissors",
    "black nib": None,
    "card index": None,
    "card index dividers": None,
    "chart with upwards trend": None,
    "chart with downwards trend": None,
    "bar chart": None,
    "tear-off calendar": None,
    "spiral calendar": None,
    "page with curl": None,
    "page facing up": "sheet of paper",
    "bookmark tabs": None,
    "green book": None,
    "blue book": None,
    "orange book": None,
    "notebook with decorative cover": "decorated notebook",
    "label": "tag",
    "couch and lamp": "couch and lamp",
    "roll of paper": "toilet paper",
    "bar of soap": "soap",
    "shopping trolley": "shopping cart",
    "identification card": "id card",
    "placard": "placard",
    "round pushpin": "round pushpin",
    "card file box": "card file box",
}

# canonical -> the concept it is a near-duplicate or part/variant of (same split, marked related)
RELATED = {
    "mouse face": "mouse",
    "cow face": "cow",
    "tiger face": "tiger",
    "rabbit face": "rabbit",
    "cat face": "cat",
    "horse face": "horse",
    "monkey face": "monkey",
    "dog face": "dog",
    "pig face": "pig",
    "dragon face": "dragon",
    "black cat": "cat",
    "service dog": "dog",
    "guide dog": "dog",
    "poodle": "dog",
    "boar": "pig",
    "rat": "mouse",
    "ox": "cow",
    "water buffalo": "cow",
    "two-hump camel": "camel",
    "spouting whale": "whale",
    "baby chick": "chicken",
    "rooster": "chicken",
    "black bird": "bird",
    "tropical fish": "fish",
    "blowfish": "fish",
    "polar bear": "bear",
    "t-rex": "dinosaur",
    "green apple": "apple",
    "brown mushroom": "mushroom",
    "shamrock": "four-leaf clover",
    "empty nest": "nest with eggs",
    "wilted flower": "rose",
    "cherry blossom": "yellow blossom",
    "clinking beer mugs": "beer mug",
    "clinking glasses": "wine glass",
    "small airplane": "airplane",
    "bullet train": "high-speed train",
    "racing car": "car",
    "police car": "car",
    "taxi": "car",
    "suv": "car",
    "lorry": "truck",
    "pickup truck": "truck",
    "motor scooter": "scooter",
    "motorcycle": "scooter",
    "light rail": "tram",
    "monorail": "tram",
    "metro": "train",
    "railway car": "train",
    "mountain railway": "train",
    "steam locomotive": "train",
    "trolleybus": "bus",
    "minibus": "bus",
    "motor boat": "speedboat",
    "ferry": "ship",
    "cruise ship": "ship",
    "houses": "house",
    "house with garden": "house",
    "derelict house": "house",
    "snowy mountain": "mountain",
    "mount fuji": "mountain",
    "camping": "tent",
    "admission tickets": "ticket",
    "first place medal": "sports medal",
    "military medal": "sports medal",
    "alarm clock": "mantelpiece clock",
    "timer clock": "stopwatch",
    "camera with flash": "camera",
    "video camera": "movie camera",
    "studio microphone": "microphone",
    "dvd": "cd",
    "minidisc": "cd",
    "desktop computer": "laptop",
    "trackball": "computer mouse",
    "telephone receiver": "telephone",
    "open file folder": "file folder",
    "round pushpin": "pushpin",
    "linked paperclips": "paperclip",
    "triangular ruler": "straight ruler",
    "rolled-up newspaper": "newspaper",
    "open book": "closed book",
    "books": "closed book",
    "decorated notebook": "notebook",
    "fountain pen": "pen",
    "old key": "key",
    "open lock": "lock",
    "outbox tray": "inbox tray",
    "postbox": "mailbox",
    "ice cream": "soft serve",
    "shaved ice": "soft serve",
    "birthday cake": "shortcake",
    "cupcake": "shortcake",
    "fork and knife": "plate",
    "snow cloud": "rain cloud",
    "thunder cloud": "rain cloud",
    "sun behind a cloud": "sun",
    "closed umbrella": "umbrella",
    "full moon": "crescent moon",
    "sparkler": "fireworks",
    "firecracker": "fireworks",
    "confetti ball": "party popper",
    "high-heeled shoe": "shoe",
    "athletic shoe": "shoe",
    "flat shoe": "shoe",
    "ballet shoes": "shoe",
    "hiking boot": "boots",
    "sandal": "thong sandal",
    "handbag": "purse",
    "pouch": "purse",
    "sunglasses": "eyeglasses",
    "billed cap": "sun hat",
    "one-piece swimsuit": "bikini",
    "bell pepper": "chili pepper",
    "tangerine": "lime",
    "cable car": "tram",
    "helicopter": "airplane",
    "beer mug": "tumbler glass",
    "cooked rice": "rice ball",
    "rice cracker": "rice ball",
    "fish cake": "oden",
    "baguette bread": "bread",
    "flatbread": "bread",
}
PLURAL_ONLY = {
    "houses",
    "books",
    "cherries",
    "grapes",
    "beans",
    "peanuts",
    "blueberries",
    "jeans",
    "shorts",
    "socks",
    "gloves",
    "goggles",
    "sunglasses",
    "eyeglasses",
    "chopsticks",
    "skis",
    "headphones",
    "maracas",
    "chains",
    "swords",
    "bricks",
    "pancakes",
    "french fries",
    "admission tickets",
    "linked paperclips",
    "shopping bags",
    "ballet shoes",
    "briefs",
    "clinking glasses",
    "clinking beer mugs",
    "nesting dolls",
    "boots",
    "theatre masks",
    "fireworks",
    "prayer beads",
    "popcorn",
    "spaghetti",
    "sushi",
    "bacon",
    "butter",
    "curry",
    "stew",
    "paella",
    "toilet paper",
    "soap",
    "dna",
    "coffee",
    "champagne",
    "sake",
    "lettuce",
    "corn",
    "wood",
    "rock",
    "x-ray",
    "nut and bolt",
    "couch and lamp",
    "fork and knife",
    "bow and arrow",
    "running shirt",
}
KEEP_CATEGORIES = ("Animals & Nature", "Food & Drink", "Travel & Places", "Activities", "Objects")
DROP_SUBCATEGORIES = ("cat-face", "monkey-face")


def plural(name: str) -> str:
    if name in PLURAL_ONLY:
        return name
    head, _, tail = name.rpartition(" ")
    w = tail or name
    if w.endswith(("s", "sh", "ch", "x", "z")):
        p = w + "es"
    elif w.endswith("y") and len(w) > 1 and w[-2] not in "aeiou":
        p = w[:-1] + "ies"
    elif w.endswith("fe"):
        p = w[:-2] + "ves"
    elif w in ("mouse",):
        p = "mice"
    elif w in ("sheep", "deer", "bison", "moose", "fish", "shrimp", "squid"):
        p = w
    elif w == "knife":
        p = "knives"
    elif w == "leaf":
        p = "leaves"
    elif w == "goose":
        p = "geese"
    elif w in ("tomato", "potato", "mango"):
        p = w + "es"
    else:
        p = w + "s"
    return f"{head} {p}" if head else p


def split_of(group: str) -> str:
    h = int(hashlib.sha256(f"{SPLIT_SALT}:{group}".encode()).hexdigest()[:8], 16)
    return "heldout" if h % 100 < HELDOUT_PERCENT else "train"


def root_of(name: str) -> str:
    seen = set()
    while name in RELATED and name not in seen:
        seen.add(name)
        name = RELATED[name]
    return name


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__)
        return 2
    pkg = Path(argv[0])
    emoji = json.loads((pkg / "emoji.json").read_text())
    img_dir = pkg / "img" / "google" / "64"
    rows = []
    seen: set[str] = set()
    for e in sorted(emoji, key=lambda e: e["sort_order"]):
        if e["category"] not in KEEP_CATEGORIES or e["subcategory"] in DROP_SUBCATEGORIES:
            continue
        if not e.get("has_img_google") or not (img_dir / e["image"]).is_file():
            continue
        raw = e["name"].lower().replace("’", "'")
        if "clock face" in raw or "moon symbol" in raw or "moon with face" in raw or raw == "sun with face":
            if raw != "full moon symbol":
                continue
        name = RENAME.get(raw, raw) if raw in RENAME else raw
        if name is None or name in seen:
            continue
        seen.add(name)
        cat, sub = CATEGORY_OVERRIDE.get(name) or SUBCATS[e["subcategory"]]
        aliases = []
        for a in [raw] + [s.replace("_", " ") for s in e["short_names"]] + [plural(name)]:
            a = a.strip()
            if a and a != name and a not in aliases and not any(ch.isdigit() for ch in a):
                aliases.append(a)
        slug = "".join(ch if ch.isalnum() else "_" for ch in name).strip("_")
        rows.append(
            {
                "name": name,
                "aliases": aliases,
                "category": cat,
                "subcategory": sub,
                "image": f"{slug}.png",
                "emoji": e["unified"],
                "emoji_name": e["name"].lower(),
                "group": name,
                "plural": plural(name),
            }
        )
    names = {r["name"] for r in rows}
    missing = sorted({k for k in RELATED if k in names and RELATED[k] not in names})
    if missing:
        raise SystemExit(f"related targets missing for: {missing}")
    for r in rows:
        r["group"] = root_of(r["name"])
    for r in rows:
        r["related"] = sorted(o["name"] for o in rows if o["group"] == r["group"] and o["name"] != r["name"])
        r["split"] = split_of(r["group"])
    if OUT.exists():
        for p in OUT.glob("*.png"):
            p.unlink()
    OUT.mkdir(parents=True, exist_ok=True)
    from PIL import Image

    for r in rows:  # every image stored as 8-bit RGBA (a few source files are grey+alpha or palette PNGs)
        e_img = next(e["image"] for e in emoji if e["unified"] == r["emoji"])
        with Image.open(img_dir / e_img) as im:
            if im.mode == "RGBA":
                shutil.copyfile(img_dir / e_img, OUT / r["image"])
            else:
                im.convert("RGBA").save(OUT / r["image"], optimize=True)
    keys = (
        "name",
        "aliases",
        "plural",
        "category",
        "subcategory",
        "split",
        "image",
        "related",
        "group",
        "emoji",
        "emoji_name",
    )
    table = [{k: r[k] for k in keys} for r in rows]
    (OUT / "concepts.json").write_text(json.dumps(table, indent=1, ensure_ascii=False) + "\n")
    n_held = sum(r["split"] == "heldout" for r in rows)
    print(f"{len(rows)} concepts, {n_held} held out ({100 * n_held / len(rows):.1f}%)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
