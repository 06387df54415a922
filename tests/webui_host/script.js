// The fake host's own JavaScript (tests/webui_host/modules/ui.py puts it in the page): what an
// extension's tab relies on from the WebUI's script.js and javascript/ui.js, written by us from
// their behaviour (A1111 1.10, Forge), not copied.

function gradioApp() {
    const elems = document.getElementsByTagName('gradio-app');
    const elem = elems.length == 0 ? document : elems[0];
    if (elem !== document) {
        elem.getElementById = function(id) {
            return document.getElementById(id);
        };
    }
    return elem.shadowRoot ? elem.shadowRoot : elem;
}

function all_gallery_buttons() {
    const buttons = gradioApp().querySelectorAll('[style="display: block;"].tabitem div[id$=_gallery].gradio-gallery .thumbnails > .thumbnail-item.thumbnail-small');
    return Array.from(buttons).filter(elem => elem.offsetParent !== null);
}

function selected_gallery_index() {
    return all_gallery_buttons().findIndex(elem => elem.classList.contains('selected'));
}

// A "Send to" button of a gallery: the gallery's selected image (the first when none is).
function extract_image_from_gallery(gallery) {
    if (!gallery || gallery.length == 0) {
        return [null];
    }
    let index = selected_gallery_index();
    if (index < 0 || index >= gallery.length) {
        index = 0;
    }
    return [[gallery[index]]];
}

// The top-level tabs are the first buttons in #tabs: txt2img, img2img, Extras, then the extensions'.
function switch_to_txt2img() {
    gradioApp().querySelector('#tabs').querySelectorAll('button')[0].click();
    return Array.from(arguments);
}

function switch_to_img2img_tab(no) {
    gradioApp().querySelector('#tabs').querySelectorAll('button')[1].click();
    gradioApp().getElementById('mode_img2img').querySelectorAll('button')[no].click();
}

function switch_to_img2img() {
    switch_to_img2img_tab(0);
    return Array.from(arguments);
}

function switch_to_inpaint() {
    switch_to_img2img_tab(1);
    return Array.from(arguments);
}

function switch_to_extras() {
    gradioApp().querySelector('#tabs').querySelectorAll('button')[2].click();
    return Array.from(arguments);
}
