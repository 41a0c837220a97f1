# -*- coding: utf-8 -*-
# Copyright (c) CKA networking labs maintainers
# SPDX-License-Identifier: Apache-2.0
"""Practice tests: a lesson's questions, each answered from the live lab (labs/practice/LESSON.yml).

A practice file (the format is in labs/README.md, "Practice tests") names the lab
it runs on and lists questions. Each question says how its answer is found on the
machine (``command``, run there with ``sh -c``, and ``read``: how the answer is
read from what it prints), how a student's answer is compared with it
(``compare``), and the ``hint`` shown after a wrong answer (the command that
shows it). Nothing is stored: two students' machines give two answers, and each
is graded against its own.

This module is plain Python, used on the Ansible computer by the
``cka.lab.lab_practice`` action (the schema, before anything runs) and by the
``cka-lab practice`` command (reading and comparing).

- :data:`SCHEMA`: the JSON schema of a practice file;
- :func:`read_answer` ``(spec, stdout) -> str``: the answer in a command's output;
  raises :class:`AnswerError`;
- :func:`same` ``(compare, expected, given, choices=()) -> bool``: whether a
  student's answer is the right one, as its kind is compared;
- :func:`load_answers` ``(path, practice) -> dict``: a student's answers file,
  checked against the practice's questions; raises :class:`AnswersFileError`.

Sources: ipaddress (CIDRs and addresses written either way), JMESPath for JSON
output (https://jmespath.org/specification.html), Python's re for text.
"""
from __future__ import annotations

import ipaddress
import json
import posixpath
import re

try:
    import jmespath
except ImportError:  # only the Ansible computer reads answers
    jmespath = None

try:
    import yaml
except ImportError:
    yaml = None

ID = r'^[a-z][a-z0-9-]{0,47}\Z'
# How a student's answer is compared with the machine's.
COMPARES = {
    'name': 'the same name, as written (an interface, a namespace, a plugin)',
    'text': 'the same words, in any case',
    'mac': 'the same MAC address, in any case, with : or - between its bytes',
    'address': 'the same IP address',
    'cidr': 'the same network (10.244.0.0/16 or 10.244.0.0/255.255.0.0)',
    'interface_address': 'the same address and prefix (192.168.15.5/24 or 192.168.15.5/255.255.255.0)',
    'endpoint': 'the same address and port (ADDRESS:PORT)',
    'port': 'the same port number',
    'number': 'the same whole number',
    'path': 'the same path (a trailing / does not matter)',
    'list': 'the same items in the same order (separated by commas or spaces)',
    'choice': 'one of the choices: its text or its number in the list',
}

_READ = {
    'type': 'object', 'additionalProperties': False, 'maxProperties': 1, 'properties': {
        # JMESPath over the command's JSON output.
        'json': {'type': 'string', 'minLength': 1},
        # A regular expression (multi-line): its first group in the first match, or the whole match.
        'regex': {'type': 'string', 'minLength': 1},
        # The Nth line (from 1) of the output.
        'line': {'type': 'integer', 'minimum': 1},
    }}

SCHEMA = {
    '$schema': 'https://json-schema.org/draft/2020-12/schema',
    'type': 'object',
    'required': ['practice', 'title', 'lab', 'questions'],
    'additionalProperties': False,
    'properties': {
        'practice': {'type': 'string', 'pattern': r'^[0-9]{3}(-[0-9]{3})?\Z'},
        'title': {'type': 'string', 'minLength': 1},
        # The lab of labs/ the test runs on, and the stage it must be built at.
        'lab': {'type': 'string', 'pattern': r'^[a-z][a-z0-9_]*\Z'},
        'stage': {'type': 'string', 'minLength': 1},
        # Commands that succeed only when the lab is there, each on its machine (`host`, an inventory host
        # of the lab's group; default every machine of the group). (Not `on`: YAML 1.1 reads it as true.)
        'ready': {'type': 'array', 'items': {
            'type': 'object', 'required': ['command'], 'additionalProperties': False,
            'properties': {'command': {'type': 'string', 'minLength': 1}, 'host': {'type': 'string'}}}},
        'questions': {'type': 'array', 'minItems': 1, 'items': {
            'type': 'object', 'required': ['id', 'question', 'command', 'compare', 'hint'],
            'additionalProperties': False,
            'properties': {
                'id': {'type': 'string', 'pattern': ID},
                'question': {'type': 'string', 'minLength': 1},
                # The machine it is asked on: an inventory host of the lab's group (default: each).
                'host': {'type': 'string'},
                'command': {'type': 'string', 'minLength': 1},
                'read': _READ,
                'compare': {'enum': sorted(COMPARES)},
                'choices': {'type': 'array', 'minItems': 2, 'items': {'type': 'string'}},
                'hint': {'type': 'string', 'minLength': 1},
            }}},
    },
}


class AnswerError(Exception):
    """The machine's output holds no answer (the lab is not as the question expects)."""


class AnswersFileError(Exception):
    """A student's answers file that cannot be graded; the message says why and what is allowed."""


def schema_errors(practice):
    """Every problem of a practice file's shape, as 'questions[2].compare: ...' lines (jsonschema)."""
    import jsonschema  # the Ansible computer has it (requirements.txt)

    out = []
    for error in sorted(jsonschema.Draft202012Validator(SCHEMA).iter_errors(practice), key=lambda e: list(e.path)):
        where = ''.join('[%d]' % p if isinstance(p, int) else ('.' if i else '') + str(p)
                        for i, p in enumerate(error.path)) or '(the file)'
        out.append('%s: %s' % (where, error.message))
    ids = [q.get('id') for q in practice.get('questions') or [] if isinstance(q, dict)]
    out += ['questions: id %r is used twice' % i for i in sorted({i for i in ids if ids.count(i) > 1})]
    for i, question in enumerate(practice.get('questions') or []):
        if isinstance(question, dict) and (question.get('compare') == 'choice') != ('choices' in question):
            out.append('questions[%d]: `choices` goes with compare: choice, and only with it' % i)
    return out


def read_answer(spec, stdout):
    """The answer in `stdout` as `spec` (a question's ``read``) finds it; the whole output stripped when
    there is no `spec`. Raises AnswerError when the output holds none."""
    spec = spec or {}
    if 'json' in spec:
        if jmespath is None:
            raise RuntimeError('the jmespath Python package is needed on the Ansible computer (pip install jmespath)')
        try:
            found = jmespath.search(spec['json'], json.loads(stdout))
        except ValueError as exc:
            raise AnswerError('the output is not JSON (%s)' % exc) from None
        if found is None or found == [] or found == '':
            raise AnswerError('the output has nothing at %s' % spec['json'])
        if isinstance(found, list):
            return ', '.join(str(item) for item in found)
        return str(found)
    if 'regex' in spec:
        match = re.search(spec['regex'], stdout, re.MULTILINE)
        if match is None:
            raise AnswerError('the output has nothing matching %s' % spec['regex'])
        return (match.group(1) if match.groups() else match.group(0)).strip()
    lines = [line.strip() for line in stdout.splitlines() if line.strip()]
    if 'line' in spec:
        if len(lines) < spec['line']:
            raise AnswerError('the output has %d line(s), not %d' % (len(lines), spec['line']))
        return lines[spec['line'] - 1]
    if not lines:
        raise AnswerError('the output is empty')
    return '\n'.join(lines)


def _mac(text):
    text = text.strip().lower().replace('-', ':')
    if not re.match(r'^([0-9a-f]{2}:){5}[0-9a-f]{2}\Z', text):
        raise ValueError(text)
    return text


def _endpoint(text):
    address, _, port = text.strip().rpartition(':')
    return ipaddress.ip_address(address.strip('[]')), int(port)


def _items(text):
    return [item for item in re.split(r'[\s,]+', text.strip()) if item]


_NORMAL = {
    'name': lambda t: t.strip(),
    'text': lambda t: ' '.join(t.lower().split()),
    'mac': _mac,
    'address': lambda t: ipaddress.ip_address(t.strip()),
    'cidr': lambda t: ipaddress.ip_network(t.strip(), strict=False),
    'interface_address': lambda t: ipaddress.ip_interface(t.strip()),
    'endpoint': _endpoint,
    'port': lambda t: int(t.strip()),
    'number': lambda t: int(t.strip()),
    'path': lambda t: posixpath.normpath(t.strip()) if t.strip() else '',
    'list': _items,
}


# What an answer of each kind looks like, for a wrong answer that is not of its kind at all.
KIND_EXAMPLES = {
    'mac': 'a MAC address like 02:42:ac:11:00:02',
    'address': 'an IP address like 192.168.15.1',
    'cidr': 'a network like 10.244.0.0/16',
    'interface_address': 'an address with its prefix length like 192.168.15.5/24',
    'endpoint': 'an address and a port like 192.168.15.2:80',
    'port': 'a port number like 80',
    'number': 'a whole number like 3',
}


def not_of_kind(compare, given):
    """What `given` should have looked like when it is not an answer of kind `compare` at all, else None."""
    if compare not in KIND_EXAMPLES:
        return None
    try:
        _NORMAL[compare](str(given))
    except (ValueError, TypeError):
        return KIND_EXAMPLES[compare]
    return None


def shown(given, width=80):
    """A student's answer as a message shows it: on one line, a long one cut with an ellipsis, and every
    character a terminal or an XML report cannot take (control characters such as an arrow key's escape,
    lone surrogates) shown as U+FFFD."""
    text = ''.join('\ufffd' if _unprintable(c) else c for c in ' '.join(str(given).split()))
    return text if len(text) <= width else text[:width - 3] + '...'


def _unprintable(char):
    code = ord(char)
    return code < 0x20 or 0x7f <= code < 0xa0 or 0xd800 <= code < 0xe000 or code in (0xfffe, 0xffff)


# A student's name is part of each report's test name (test_practice_ID[STUDENT: question]), as the
# grader's machine names are: ':', '[' and ']' would cut it in the wrong place on the scoreboard.
STUDENT_RULE = 'letters, digits, spaces and . _ - \' @ (+) (no : [ ] or control characters), at most 64'


def student_problem(name):
    """Why `name` cannot name a student on the scoreboard, or None."""
    if not name.strip() or len(name) > 64 or any(c in ':[]' or _unprintable(c) for c in name):
        return "'%s' is not usable; allowed: %s" % (shown(name), STUDENT_RULE)
    return None


def same(compare, expected, given, choices=()):
    """Whether `given` (a student's answer, text) is `expected` (read from the machine), compared as
    `compare` says (see COMPARES). An answer that is not of the kind at all is wrong, never an error."""
    given = str(given if given is not None else '').strip()
    if compare == 'choice':
        if given.isdigit() and 1 <= int(given) <= len(choices):
            given = choices[int(given) - 1]
        return ' '.join(given.lower().split()) == ' '.join(str(expected).lower().split())
    normal = _NORMAL[compare]
    try:
        return normal(given) == normal(str(expected))
    except (ValueError, TypeError):
        return False


def load_answers(path, practice):
    """{question id: answer text} from a student's answers file (YAML or JSON):
    ``{practice: "209", answers: {ID: ANSWER, ...}}``, optionally with ``student`` (the name shown on the
    scoreboard) and ``limit`` (the inventory hosts of that student's lab). Every value is read as the text
    written. Every question need not be answered (an unanswered one is wrong); a question the test does
    not have is an error. Returns (answers, student, limit)."""
    if yaml is None:
        raise RuntimeError('PyYAML is needed on the Ansible computer')
    try:
        with open(path, encoding='utf-8') as handle:
            # Every value as the text written: an unquoted MAC such as 52:54:00:12:34:56 is a
            # sexagesimal number to YAML 1.1, and 010 an octal one.
            data = yaml.load(handle, Loader=yaml.BaseLoader)
    except FileNotFoundError:
        raise AnswersFileError('%s: no such answers file' % path) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise AnswersFileError('%s: cannot be read (%s)' % (path, exc)) from None
    except yaml.YAMLError as exc:
        raise AnswersFileError('%s: not YAML or JSON (%s)' % (path, ' '.join(str(exc).split()))) from None
    allowed = 'allowed: a mapping {practice: "%s", answers: {question id: answer}, student?: name, limit?: hosts}' \
        % practice['practice']
    if not isinstance(data, dict):
        raise AnswersFileError('%s: %s, not a mapping; %s'
                               % (path, 'is empty' if data is None else 'holds a ' + {list: 'list'}.get(
                                   type(data), 'single value'), allowed))
    unknown = sorted(set(data) - {'practice', 'answers', 'student', 'limit'})
    if unknown:
        raise AnswersFileError('%s: unknown key%s %s; %s' % (path, 's' if len(unknown) > 1 else '',
                                                           ', '.join(unknown), allowed))
    if str(data.get('practice')) != practice['practice']:
        raise AnswersFileError('%s: practice is %r, not "%s" (the test being graded); %s'
                               % (path, data.get('practice'), practice['practice'], allowed))
    answers = data.get('answers')
    if not isinstance(answers, dict):
        raise AnswersFileError('%s: answers is %s, not a mapping of question ids to answers; %s'
                               % (path, 'missing' if answers is None else type(answers).__name__, allowed))
    ids = [q['id'] for q in practice['questions']]
    strange = sorted(str(key) for key in answers if key not in ids)
    if strange:
        raise AnswersFileError('%s: no question %s in practice test %s; its questions: %s'
                               % (path, ', '.join(strange), practice['practice'], ', '.join(ids)))
    bad = sorted(key for key, value in answers.items() if isinstance(value, (dict, list)))
    if bad:
        raise AnswersFileError('%s: the answer to %s is not one value (text or a number)' % (path, ', '.join(bad)))
    for key in ('student', 'limit'):
        if key in data and not isinstance(data[key], str):
            raise AnswersFileError('%s: %s must be text, not %s' % (path, key, type(data[key]).__name__))
    problem = student_problem(data['student']) if 'student' in data else None
    if problem:
        raise AnswersFileError('%s: student %s' % (path, problem))
    return {key: str(value) for key, value in answers.items()}, data.get('student'), data.get('limit')
